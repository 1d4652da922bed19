"""The venue layer: the sans-I/O core, and the provider runtime built on it.

The core does no I/O: per venue, ``binance`` and ``okx`` hold the parsers (venue JSON
-> the records of ``_parsed``) and the adapters (URLs, subscribe messages, snapshot
plans). :class:`BookAssembler` turns depth records into book events and snapshot
requests; :func:`read_capture` / :class:`CaptureWriter` read and write the capture
format; :func:`replay_capture` drives a capture through all of it synchronously.

The I/O layer: :func:`serve_provider` / :class:`Provider` run one venue connection
into a pipeline over an injected :class:`Transport` (the network through
:func:`open_network_transport`, a recording through :func:`open_recording_transport`,
or the replay and fake transports of ``meltica_trio.testing``).
"""

from ._adapter import Heartbeat, RestSnapshot, Resubscribe, SnapshotPlan, VenueAdapter
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
from ._backoff import Backoff
from ._book import CHECKSUM_DEPTH, OrderBook, book_checksum, checksum_text, signed_crc32
from ._capture import CaptureKind, CaptureRecord, CaptureWriter, read_capture
from ._errors import ProviderError, ProviderGaveUpError, TransportError
from ._parsed import ControlFrame, DepthDiff, DepthSnapshot, Parsed, VenueMessage
from ._provider_config import EventSink, ProviderConfig, ProviderStatistics
from ._recorder import RecordingTransport, open_recording_transport
from ._replay import (
    BookReport,
    ReplayResult,
    Venue,
    format_replay_summary,
    replay_capture,
    replay_records,
)
from ._runtime import Provider, serve_provider
from ._transport import NetworkTransport, Transport, WebSocket, open_network_transport
from .binance._provider import BinanceAdapter
from .okx._provider import OkxAdapter

__all__ = [
    "CHECKSUM_DEPTH",
    "MAX_BUFFERED_DIFFS",
    "STALE_AFTER",
    "Backoff",
    "BinanceAdapter",
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
    "EventSink",
    "Heartbeat",
    "NetworkTransport",
    "OkxAdapter",
    "OrderBook",
    "Parsed",
    "Provider",
    "ProviderConfig",
    "ProviderError",
    "ProviderGaveUpError",
    "ProviderStatistics",
    "Publish",
    "RecordingTransport",
    "ReplayResult",
    "RequestSnapshot",
    "RestSnapshot",
    "Resubscribe",
    "SnapshotPlan",
    "SyncRules",
    "Transport",
    "TransportError",
    "Venue",
    "VenueAdapter",
    "VenueMessage",
    "WebSocket",
    "book_checksum",
    "checksum_text",
    "format_replay_summary",
    "open_network_transport",
    "open_recording_transport",
    "read_capture",
    "replay_capture",
    "replay_records",
    "serve_provider",
    "signed_crc32",
]
