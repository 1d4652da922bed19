"""The consumer runtime: plain functions of (event, context), wrapped and isolated."""

from ._context import ConsumerContext
from ._registry import Consumer, ConsumerRegistry
from ._runtime import ConsumerRuntime, ConsumerStatistics, Handler

__all__ = [
    "Consumer",
    "ConsumerContext",
    "ConsumerRegistry",
    "ConsumerRuntime",
    "ConsumerStatistics",
    "Handler",
]
