"""The consumer runtime: plain functions of (event, context), wrapped and isolated."""

from ._runtime import ConsumerContext, ConsumerRuntime, ConsumerStatistics, Handler

__all__ = ["ConsumerContext", "ConsumerRuntime", "ConsumerStatistics", "Handler"]
