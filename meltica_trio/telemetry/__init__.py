"""Operations-only views: latency histograms, the dead-letter queue and its file,
structured logs and the Prometheus endpoint. No business code reads them."""

from ._dlq import DeadLetter, DeadLetterQueue, DeadLetterStatistics
from ._histogram import LatencyHistogram, LatencySummary
from ._journal import (
    DeadLetterFile,
    DeadLetterJournal,
    DeadLetterRecord,
    encode_dead_letter,
    parse_dead_letter,
    read_dead_letters,
    serve_dead_letter_file,
)
from ._logs import JsonFormatter, configure_logging, log_fields, logging_configured
from ._metrics_server import MetricsServer, metrics_registry, serve_metrics
from ._prometheus import PipelineCollector

__all__ = [
    "DeadLetter",
    "DeadLetterFile",
    "DeadLetterJournal",
    "DeadLetterQueue",
    "DeadLetterRecord",
    "DeadLetterStatistics",
    "JsonFormatter",
    "LatencyHistogram",
    "LatencySummary",
    "MetricsServer",
    "PipelineCollector",
    "configure_logging",
    "encode_dead_letter",
    "log_fields",
    "logging_configured",
    "metrics_registry",
    "parse_dead_letter",
    "read_dead_letters",
    "serve_dead_letter_file",
    "serve_metrics",
]
