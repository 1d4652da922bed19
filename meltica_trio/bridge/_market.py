"""A worker's market data: the topics it wants, read with XREAD into its lane.

Market data streams are not read through groups: every worker of every group reads
what it wants, and nothing is acknowledged (a stream keeps its last ``MAXLEN ~``
entries whoever read them). The worker's lane applies the delivery classes as in a
pipeline: SEQUENCED events are dropped oldest first when the consumer lags and the
next one says how many; LATEST ones replace a queued one.

Topics are found in the exporter's set of streams, looked at every ``refresh``
seconds. A topic known at start is read from its newest entry on (and that entry
is delivered if its kind is LATEST: the consumer starts with the current ticker or
book); a topic that appears later is read from its first entry. A book whose delta
the lane dropped gets the newest exported snapshot of that book, read again.
"""

from __future__ import annotations

import functools
import logging
from typing import Final

import attrs
import trio
from coredis.response.types import StreamEntry

from meltica_trio._errors import DecodeError
from meltica_trio.bus import Lane
from meltica_trio.events import LATEST_KINDS, Event, Kind
from meltica_trio.lifecycle import EventPool

from ._config import WorkerConfig
from ._dead import add_dead_letter, malformed_entry
from ._link import Link
from ._streams import StreamNames
from ._wire import decode_entry, fields_of, id_of, market_kind

log = logging.getLogger(__name__)

_FIRST: Final = b"0-0"


@attrs.frozen(kw_only=True)
class MarketStatistics:
    """Counters of a worker's market data.

    Attributes:
        topics: market data streams read.
        read: entries read.
        malformed: entries that did not decode (skipped, in the dead-letter stream).
        snapshots_reread: book snapshots read again after the lane dropped a delta.
    """

    topics: int
    read: int
    malformed: int
    snapshots_reread: int


@attrs.define(eq=False)
class MarketIntake:
    """Reads the market data topics a worker wants into its lane."""

    link: Link
    names: StreamNames
    config: WorkerConfig
    pool: EventPool[Event]
    lane: Lane
    count: int = attrs.field(kw_only=True)
    _cursors: dict[str, bytes] = attrs.field(init=False, factory=dict)
    _next_refresh: float = attrs.field(init=False, default=0.0)
    _started: bool = attrs.field(init=False, default=False)
    _lost_books: set[tuple[str, str]] = attrs.field(init=False, factory=set)
    _counts: dict[str, int] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._counts = dict.fromkeys(("read", "malformed", "snapshots_reread"), 0)

    def book_lost(self, provider: str, instrument: str) -> None:
        """The lane dropped a delta of this book: fetch the newest snapshot (never blocks)."""
        self._lost_books.add((provider, instrument))

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Read wanted topics until cancelled."""
        task_status.started()
        while True:
            if trio.current_time() >= self._next_refresh:
                await self.link.run(self._refresh, "topics")
                self._next_refresh = trio.current_time() + self.config.topic_refresh
            if self._lost_books:
                await self.link.run(self._reread_snapshots, "snapshot")
            if not self._cursors:
                await trio.sleep(self.config.topic_refresh)
                continue
            reply = await self.link.run(self._read, "xread")
            for stream, entries in reply.items():
                await self._deliver(stream.decode(), entries)

    async def _refresh(self) -> None:
        topics = await self.link.client.smembers(self.names.topics)
        new: list[str] = []
        for raw in sorted(topics):
            stream = raw.decode()
            parsed = self.names.parse_market(stream)
            if stream not in self._cursors and parsed is not None and self.config.wants(*parsed):
                new.append(stream)
        if not self._started:
            self._started = True
            await self._start_at_newest(new)
        else:
            self._cursors.update(dict.fromkeys(new, _FIRST))

    async def _start_at_newest(self, streams: list[str]) -> None:
        async with self.link.client.pipeline(transaction=False) as pipe:
            replies = [pipe.xrevrange(stream, "+", "-", count=1) for stream in streams]
        for stream, reply in zip(streams, replies, strict=True):
            newest = await reply
            if not newest:
                self._cursors[stream] = _FIRST
                continue
            self._cursors[stream] = id_of(newest[0])
            parsed = self.names.parse_market(stream)
            if parsed is not None and parsed[2] in LATEST_KINDS:
                await self._deliver(stream, newest)

    async def _reread_snapshots(self) -> None:
        books, self._lost_books = self._lost_books, set()
        for provider, instrument in sorted(books):
            stream = self.names.market(provider, instrument, Kind.BOOK_SNAPSHOT)
            if stream not in self._cursors:
                continue  # not exported, or not wanted: nothing to re-read
            newest = await self.link.client.xrevrange(stream, "+", "-", count=1)
            self._counts["snapshots_reread"] += len(newest)
            await self._deliver(stream, newest, advance=False)

    async def _read(self) -> dict[bytes, tuple[StreamEntry, ...]]:
        reply = await self.link.client.xread(
            dict(self._cursors), count=self.count, block=int(self.config.read_block * 1000)
        )
        return dict(reply) if reply else {}

    async def _deliver(
        self, stream: str, entries: tuple[StreamEntry, ...], *, advance: bool = True
    ) -> None:
        letters: list[dict[bytes, bytes]] = []
        for entry in entries:
            identifier, fields = id_of(entry), fields_of(entry)
            if advance:
                self._cursors[stream] = identifier
            self._counts["read"] += 1
            try:
                event, _ = decode_entry(fields)
                market_kind(event)
            except DecodeError as exc:
                self._counts["malformed"] += 1
                log.warning("market data entry %s %r is malformed: %s", stream, identifier, exc)
                letter = malformed_entry(stream, identifier, fields, str(exc), self.config.name)
                letters.append(letter)
                continue
            try:
                envelope = self.pool.duplicate_nowait(event)
            except trio.WouldBlock:
                envelope = await self.pool.duplicate(event)
            self.lane.put(envelope)
        if letters:
            await self.link.run(functools.partial(self._dead_letters, letters), "dead letter")

    async def _dead_letters(self, letters: list[dict[bytes, bytes]]) -> None:
        async with self.link.client.pipeline(transaction=False) as pipe:
            for letter in letters:
                add_dead_letter(pipe, self.names.dlq(self.config.group), letter)

    def statistics(self) -> MarketStatistics:
        """A snapshot of the counters."""
        return MarketStatistics(topics=len(self._cursors), **self._counts)
