"""Settings, counters and the pipeline interface of the provider runtime."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, Protocol

import attrs

from meltica_trio.events import Event, Kind, Payload

from ._assembler import STALE_AFTER, BookStatistics
from ._backoff import Backoff
from ._transport import REST_TIMEOUT

INBOX_CAPACITY: Final = 256
"""Items (frames, snapshots, resyncs) waiting for the processor; the reader waits
beyond it, which leaves the backlog in the socket, where the venue sees it."""

MAX_FRAME_BYTES: Final = 1024 * 1024
"""Characters (text) or bytes of a frame beyond which it is dropped and counted. Venue
frames are a few kB (a 400-level OKX snapshot ~30 kB), so a megabyte is a broken or
hostile frame; the connection survives it."""

STALE_CHECK_INTERVAL: Final = 1.0
"""Seconds between staleness checks of the books (``BookAssembler.check_stale``)."""

MAX_CONCURRENT_SNAPSHOTS: Final = 4
"""REST snapshots fetched at once per connection; more wait (Binance weighs each 50)."""

SNAPSHOT_RETRY: Final = Backoff(initial=1.0, maximum=30.0)
"""Delays between attempts of a failed REST snapshot (error, 429, 5xx), per book."""

LOG_FIRST: Final = 10
"""Bad frames logged one by one before logging switches to one in ``LOG_EVERY``."""
LOG_EVERY: Final = 1000
"""After the first ``LOG_FIRST``, one bad frame in this many is logged."""


class EventSink(Protocol):
    """What a provider needs of a pipeline (``meltica_trio.Pipeline`` is one)."""

    def new_event(
        self,
        *,
        kind: Kind,
        provider: str = "",
        instrument: str = "",
        seq: int | None = None,
        payload: Payload | None = None,
    ) -> Event:
        """A pooled event, owned by the caller until published."""
        ...

    async def publish(self, event: Event) -> None:
        """Hand the event over (the sink owns it from the call on)."""
        ...

    def on_resync(self, provider: str, listener: Callable[[str, str], None]) -> None:
        """Register the callback told (instrument, reason) when a book must be resent."""
        ...

    def declare_instruments(self, provider: str, instruments: Iterable[str]) -> None:
        """Declare the instruments the provider publishes."""
        ...


@attrs.frozen(kw_only=True)
class ProviderConfig:
    """Settings of a provider runtime (venue specifics live in the adapter).

    Attributes:
        reconnect: backoff between connection attempts; ``max_attempts`` gives up.
        snapshot_retry: backoff between attempts of a failed REST snapshot.
        inbox_capacity: items waiting for the processor before the reader waits.
        max_frame_bytes: frames longer than this are dropped and counted.
        stale_check_interval: seconds between staleness checks.
        max_concurrent_snapshots: REST snapshots in flight at once.
        rest_timeout: seconds a REST snapshot request may take.
        stale_after: seconds without book messages before a LIVE book is STALE.
        snapshot_depth: levels per side of published snapshots (``None``: all).
    """

    reconnect: Backoff = attrs.field(factory=Backoff)
    snapshot_retry: Backoff = SNAPSHOT_RETRY
    inbox_capacity: int = INBOX_CAPACITY
    max_frame_bytes: int = MAX_FRAME_BYTES
    stale_check_interval: float = STALE_CHECK_INTERVAL
    max_concurrent_snapshots: int = MAX_CONCURRENT_SNAPSHOTS
    rest_timeout: float = REST_TIMEOUT
    stale_after: float = STALE_AFTER
    snapshot_depth: int | None = None


@attrs.frozen(kw_only=True)
class ProviderStatistics:
    """Counters of a provider (see :meth:`Provider.statistics`).

    Attributes:
        provider: its name.
        connected: a connection is up now.
        connect_attempts: connections tried; connects: opened; reconnects: opened
            after the first; rotations: replaced on age.
        frames: messages received; oversized_frames: dropped for size (or closed
            by the transport for it); malformed_frames: not JSON; decode_errors:
            JSON frames or REST bodies the venue parser rejected.
        venue_errors: error answers from the venue; pings / pongs: heartbeats.
        unknown_instrument: records of instruments not configured (dropped).
        snapshots_requested: fresh books asked for; snapshot_failures: failed
            REST snapshot attempts; resyncs_requested: resyncs the pipeline asked.
        published: events published; give_ups: times reconnecting stopped.
        books: each book's counters.
    """

    provider: str
    connected: bool
    connect_attempts: int
    connects: int
    reconnects: int
    rotations: int
    frames: int
    oversized_frames: int
    malformed_frames: int
    decode_errors: int
    venue_errors: int
    pings: int
    pongs: int
    unknown_instrument: int
    snapshots_requested: int
    snapshot_failures: int
    resyncs_requested: int
    published: int
    give_ups: int
    books: tuple[BookStatistics, ...]
