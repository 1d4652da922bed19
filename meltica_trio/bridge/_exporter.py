"""The exporter: pipeline traffic into Redis streams, critical events never lost.

It gives the bridge two kinds of consumer function, subscribed through the
pipeline like any other consumer:

- one async function per remote consumer (:meth:`Exporter.critical_handler`): each
  critical event goes into a bounded buffer for the group's critical stream. While
  Redis is unreachable the buffer fills; once it is full the function waits, so the
  backlog stays in that consumer's lane (where critical events are never dropped
  and ``critical_backlog`` shows it) and the bridge stops taking orders from the
  group's workers until it drains: backpressure, counted in ``critical_waits``.
- one sync function for market data (:meth:`Exporter.market_handler`): each event
  goes to its topic's stream, trimmed with ``MAXLEN ~``. While the link is down
  market data is dropped and counted; a SEQUENCED stream's next exported event
  carries the count in ``skipped``, and a book that lost a delta exports no more
  deltas until its next snapshot.

One writer task (:meth:`Exporter.serve`) drains both buffers with one XADD pipeline
per wake-up, which is one per lane drain of the consumer runner. A failed pipeline
keeps its critical entries (resent, perhaps twice: every critical entry carries its
apply id, and readers apply an id once) and drops its market data.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

import attrs
import trio
from coredis.tokens import PureToken

from meltica_trio.consumers import ConsumerContext
from meltica_trio.events import Event, Kind

from ._link import LINK_ERRORS, Link
from ._streams import StreamNames
from ._wire import Fields, apply_id, critical_fields, market_fields

_BOOK_DELTA: Final = Kind.BOOK_DELTA
_BOOK_SNAPSHOT: Final = Kind.BOOK_SNAPSHOT
_SEQUENCED: Final = frozenset({Kind.TRADE, Kind.BOOK_DELTA})

_Market = tuple[str, Fields, Kind, str, str]
"""A market data entry: stream, fields, kind, provider, instrument."""


@attrs.frozen(kw_only=True)
class ExporterStatistics:
    """A snapshot of the exporter.

    Attributes:
        critical_buffered: critical entries waiting to be written (in flight included).
        critical_capacity: the buffer's bound.
        critical_written: critical entries written (resent ones counted once per send).
        critical_waits: exports that found the buffer full and waited (backpressure).
        critical_waiting: exporting consumers waiting for room now.
        market_buffered: market data entries waiting to be written.
        market_written: market data entries written.
        market_dropped_link_down: market data dropped because Redis was unreachable.
        market_dropped_overflow: market data dropped because the writer lagged.
        market_held_for_snapshot: book deltas not exported after their book lost one.
        books_awaiting_snapshot: books whose deltas wait for a snapshot now.
        batches: XADD pipelines sent.
        failed_batches: pipelines that failed on the connection.
        topics: market data streams written by this exporter.
    """

    critical_buffered: int
    critical_capacity: int
    critical_written: int
    critical_waits: int
    critical_waiting: int
    market_buffered: int
    market_written: int
    market_dropped_link_down: int
    market_dropped_overflow: int
    market_held_for_snapshot: int
    books_awaiting_snapshot: int
    batches: int
    failed_batches: int
    topics: int


@attrs.define(eq=False)
class Exporter:
    """Buffers exported events and writes them to Redis (see the module docstring).

    Args:
        link: the Redis link.
        names: the key names.
        origin: unique per exporter run; part of the apply id of events without one.
        critical_capacity: critical entries buffered before exporters wait.
        market_capacity: market data entries buffered before the oldest is dropped.
        write_batch: entries per XADD pipeline.
        market_maxlen: entries kept per market data stream (``MAXLEN ~``).
    """

    link: Link
    names: StreamNames
    origin: str
    critical_capacity: int = attrs.field(kw_only=True)
    market_capacity: int = attrs.field(kw_only=True)
    write_batch: int = attrs.field(kw_only=True)
    market_maxlen: int = attrs.field(kw_only=True)
    _critical: deque[tuple[str, Fields]] = attrs.field(init=False, factory=deque)
    _market: deque[_Market] = attrs.field(init=False, factory=deque)
    _work: trio.Event = attrs.field(init=False, factory=trio.Event)
    _room: trio.lowlevel.ParkingLot = attrs.field(init=False, factory=trio.lowlevel.ParkingLot)
    _topics: set[str] = attrs.field(init=False, factory=set)
    _unregistered: set[str] = attrs.field(init=False, factory=set)
    _skips: dict[str, int] = attrs.field(init=False, factory=dict)
    _lost_books: set[tuple[str, str]] = attrs.field(init=False, factory=set)
    _counts: dict[str, int] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        names = (
            "critical_written",
            "critical_waits",
            "critical_waiting",
            "market_written",
            "market_dropped_link_down",
            "market_dropped_overflow",
            "market_held_for_snapshot",
            "batches",
            "failed_batches",
        )
        self._counts = dict.fromkeys(names, 0)

    # -- the producers' side --------------------------------------------------------

    def critical_handler(self, group: str) -> Callable[[Event, ConsumerContext], Awaitable[None]]:
        """The consumer function that exports a remote consumer's critical events."""
        stream = self.names.critical(group)

        async def export_critical(event: Event, ctx: ConsumerContext) -> None:
            await self.put_critical(stream, event)

        return export_critical

    async def put_critical(self, stream: str, event: Event, *, apply: str | None = None) -> None:
        """Buffer ``event`` for ``stream``, waiting while the buffer is full.

        The event is encoded at once; the caller keeps (and recycles) the envelope.
        ``apply`` is the entry's apply id (by default :func:`~._wire.apply_id`).

        Cancellation:
            Safe: a cancelled put has buffered nothing; once buffered it is not undone.
        """
        fields = critical_fields(event, apply or apply_id(event, self.origin))
        await trio.lowlevel.checkpoint_if_cancelled()
        if len(self._critical) >= self.critical_capacity:
            self._counts["critical_waits"] += 1
            self._counts["critical_waiting"] += 1
            try:
                while len(self._critical) >= self.critical_capacity:
                    await self._room.park()
            finally:
                self._counts["critical_waiting"] -= 1
            self._critical.append((stream, fields))
        else:
            self._critical.append((stream, fields))
            await trio.lowlevel.cancel_shielded_checkpoint()
        self._wake()

    def market_handler(self) -> Callable[[Event, ConsumerContext], None]:
        """The consumer function that exports market data (never waits)."""

        def export_market(event: Event, ctx: ConsumerContext) -> None:
            self.put_market(event)

        return export_market

    def put_market(self, event: Event) -> None:
        """Buffer a market data event for its topic's stream, or drop it (counted)."""
        kind, provider, instrument = event.kind, event.provider, event.instrument
        stream = self.names.market(provider, instrument, kind)
        if not self.link.up:
            self._counts["market_dropped_link_down"] += 1
            self._lose(stream, kind, provider, instrument)
            return
        if self._lost_books and (provider, instrument) in self._lost_books:
            if kind is _BOOK_DELTA:
                self._counts["market_held_for_snapshot"] += 1
                self._lose(stream, kind, provider, instrument)
                return
            if kind is _BOOK_SNAPSHOT:
                self._lost_books.discard((provider, instrument))
        skipped = self._skips.pop(stream, 0)
        if skipped:
            event.skipped += skipped
        if len(self._market) >= self.market_capacity:
            old_stream, _, old_kind, old_provider, old_instrument = self._market.popleft()
            self._counts["market_dropped_overflow"] += 1
            self._lose(old_stream, old_kind, old_provider, old_instrument)
            if kind is _BOOK_DELTA and (provider, instrument) in self._lost_books:
                self._counts["market_held_for_snapshot"] += 1  # its own book just lost one
                self._lose(stream, kind, provider, instrument)
                return
        self._market.append((stream, market_fields(event), kind, provider, instrument))
        if stream not in self._topics:
            self._topics.add(stream)
            self._unregistered.add(stream)
        self._wake()

    def _lose(self, stream: str, kind: Kind, provider: str, instrument: str) -> None:
        """Note a dropped market data entry: its stream's next event reports the gap.

        A lost delta, or a lost snapshot (it may have been the one a lost book was
        waiting for), stops the book's deltas until its next snapshot; deltas of
        it still buffered are dropped too, as the lanes do.
        """
        if kind in _SEQUENCED:
            self._skips[stream] = self._skips.get(stream, 0) + 1
        if kind is not _BOOK_DELTA and kind is not _BOOK_SNAPSHOT:
            return
        book = (provider, instrument)
        if book in self._lost_books:
            return
        self._lost_books.add(book)
        stale = [
            entry
            for entry in self._market
            if entry[2] is _BOOK_DELTA and entry[3] == provider and entry[4] == instrument
        ]
        for entry in stale:
            self._market.remove(entry)
            self._counts["market_held_for_snapshot"] += 1
            self._skips[entry[0]] = self._skips.get(entry[0], 0) + 1

    def _wake(self) -> None:
        if not self._work.is_set():
            self._work.set()

    # -- the writer -------------------------------------------------------------------

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Write buffered entries until cancelled; reconnect with backoff on failures.

        Cancellation:
            What is still buffered is not written: the bridge stops exporting and
            waits for :meth:`wait_flushed` (bounded) before it cancels the writer.
        """
        task_status.started()
        while True:
            if not (self._critical or self._market):
                await self._work.wait()
            self._work = trio.Event()
            critical = list(itertools.islice(self._critical, self.write_batch))
            market = [
                self._market.popleft() for _ in range(min(len(self._market), self.write_batch))
            ]
            registering = tuple(self._unregistered)
            self._unregistered.clear()
            try:
                await self._write(critical, market, registering)
            except LINK_ERRORS as exc:
                self._counts["failed_batches"] += 1
                self.link.failed(exc, "xadd")
                self._unregistered.update(registering)
                # The batch's market data, and what came while it was in flight.
                market.extend(self._market)
                self._market.clear()
                for stream, _, kind, provider, instrument in market:
                    self._counts["market_dropped_link_down"] += 1
                    self._lose(stream, kind, provider, instrument)
                await self._reconnect()
                continue
            self.link.succeeded()
            for _ in critical:
                self._critical.popleft()
            self._counts["critical_written"] += len(critical)
            self._counts["market_written"] += len(market)
            self._room.unpark_all()

    async def _write(
        self, critical: list[tuple[str, Fields]], market: list[_Market], topics: tuple[str, ...]
    ) -> None:
        self._counts["batches"] += 1
        async with self.link.client.pipeline(transaction=False) as pipe:
            for stream, fields in critical:
                pipe.xadd(stream, fields)
            for stream, fields, *_ in market:
                pipe.xadd(
                    stream,
                    fields,
                    trim_strategy=PureToken.MAXLEN,
                    threshold=self.market_maxlen,
                    trim_operator=PureToken.APPROXIMATELY,
                )
            if topics:
                pipe.sadd(self.names.topics, topics)

    async def _reconnect(self) -> None:
        """Pause, then ping, until Redis answers (market data is dropped meanwhile)."""
        attempt = 1
        while True:
            await self.link.pause(attempt)
            try:
                await self.link.client.ping()
            except LINK_ERRORS as exc:
                attempt += 1
                self.link.failed(exc, "ping")
                continue
            self.link.succeeded()
            return

    async def wait_flushed(self) -> None:
        """Wait until every critical entry buffered so far has been written."""
        while self._critical:
            await self._room.park()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> ExporterStatistics:
        """A snapshot of the buffers and counters."""
        return ExporterStatistics(
            critical_buffered=len(self._critical),
            critical_capacity=self.critical_capacity,
            market_buffered=len(self._market),
            books_awaiting_snapshot=len(self._lost_books),
            topics=len(self._topics),
            **self._counts,
        )
