"""Operations-only views: latency histograms and the dead-letter queue."""

from ._dlq import DeadLetter, DeadLetterQueue, DeadLetterStatistics
from ._histogram import LatencyHistogram, LatencySummary

__all__ = [
    "DeadLetter",
    "DeadLetterQueue",
    "DeadLetterStatistics",
    "LatencyHistogram",
    "LatencySummary",
]
