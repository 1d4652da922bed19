"""The venue layer's sans-I/O core: parsed records, order books, captures and replay.

Per venue, ``binance`` and ``okx`` hold the parsers (venue JSON -> the records of
``_parsed``). :class:`BookAssembler` turns depth records into book events and snapshot
requests; :func:`read_capture` / :class:`CaptureWriter` read and write the capture
format; :func:`replay_capture` drives a capture through all of it. Nothing here does
network I/O or imports trio: the provider loops that do are built on top.
"""

from ._assembler import (
    MAX_BUFFERED_DIFFS,
    STALE_AFTER,
    BookAction,
    BookAssembler,
    BookStatistics,
    Publish,
    RequestSnapshot,
    SyncRules,
)
from ._book import CHECKSUM_DEPTH, OrderBook, book_checksum, checksum_text, signed_crc32
from ._capture import CaptureKind, CaptureRecord, CaptureWriter, read_capture
from ._parsed import ControlFrame, DepthDiff, DepthSnapshot, Parsed, VenueMessage
from ._replay import (
    BookReport,
    ReplayResult,
    Venue,
    format_replay_summary,
    replay_capture,
    replay_records,
)

__all__ = [
    "CHECKSUM_DEPTH",
    "MAX_BUFFERED_DIFFS",
    "STALE_AFTER",
    "BookAction",
    "BookAssembler",
    "BookReport",
    "BookStatistics",
    "CaptureKind",
    "CaptureRecord",
    "CaptureWriter",
    "ControlFrame",
    "DepthDiff",
    "DepthSnapshot",
    "OrderBook",
    "Parsed",
    "Publish",
    "ReplayResult",
    "RequestSnapshot",
    "SyncRules",
    "Venue",
    "VenueMessage",
    "book_checksum",
    "checksum_text",
    "format_replay_summary",
    "read_capture",
    "replay_capture",
    "replay_records",
    "signed_crc32",
]
