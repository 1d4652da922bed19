"""The exporter's buffers, drops and backpressure, against a scripted Redis (no network)."""

from __future__ import annotations

import random
from types import TracebackType
from typing import Any

import attrs
import coredis.exceptions
import pytest
import trio
import trio.testing
from bridge_helpers import trade

from meltica_trio import BookDelta, BookSnapshot, BookState, BookStatus, Event, Kind, Ticker
from meltica_trio.bridge import StreamNames
from meltica_trio.bridge._exporter import Exporter
from meltica_trio.bridge._link import Link
from meltica_trio.bridge._wire import decode_entry
from meltica_trio.providers import Backoff


@attrs.define(eq=False)
class FakeRedis:
    """Just enough of a coredis client for the exporter: pipelines of XADD/SADD, and PING."""

    down: bool = False
    written: list[tuple[str, dict[bytes, bytes]]] = attrs.field(factory=list)
    topics: set[str] = attrs.field(factory=set)
    pings: int = 0

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)

    async def ping(self) -> bytes:
        await trio.lowlevel.checkpoint()
        self.pings += 1
        if self.down:
            raise coredis.exceptions.ConnectionError("refused")
        return b"PONG"


@attrs.define(eq=False)
class FakePipeline:
    redis: FakeRedis
    queued: list[tuple[str, Any, Any]] = attrs.field(factory=list)

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await trio.lowlevel.checkpoint()
        if self.redis.down:
            raise coredis.exceptions.ConnectionError("Connection lost while receiving response")
        for op, key, value in self.queued:
            if op == "xadd":
                self.redis.written.append((key, value))
            else:
                self.redis.topics.update(value)

    def xadd(self, key: str, fields: dict[bytes, bytes], **trim: object) -> None:
        self.queued.append(("xadd", key, fields))

    def sadd(self, key: str, members: tuple[str, ...]) -> None:
        self.queued.append(("sadd", key, members))


def _exporter(redis: FakeRedis, *, critical: int = 4, market: int = 4) -> Exporter:
    link = Link(redis, Backoff(initial=0.1, maximum=1.0), random.Random(1))  # type: ignore[arg-type]
    return Exporter(
        link,
        StreamNames("t"),
        "run-1",
        critical_capacity=critical,
        market_capacity=market,
        write_batch=3,
        market_maxlen=100,
    )


def _trade(n: int) -> Event:
    return Event(
        event_id=n, kind=Kind.TRADE, provider="p", instrument="A-B", seq=n, payload=trade(n)
    )


def _status(n: int) -> Event:
    status = BookStatus(state=BookState.LIVE, reason=None, last_seq=n)
    return Event(event_id=n, kind=Kind.BOOK_STATUS, provider="p", instrument="A-B", payload=status)


def _book(kind: Kind, n: int) -> Event:
    payload = (
        BookDelta(bids=(), asks=()) if kind is Kind.BOOK_DELTA else BookSnapshot(bids=(), asks=())
    )
    return Event(event_id=n, kind=kind, provider="p", instrument="A-B", seq=n, payload=payload)


def _decoded(redis: FakeRedis, stream: str) -> list[Event]:
    return [decode_entry(fields)[0] for key, fields in redis.written if key == stream]


async def test_batches_reach_their_streams_and_topics_are_registered(
    autojump_clock: object,
) -> None:
    redis = FakeRedis()
    exporter = _exporter(redis, critical=10, market=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(exporter.serve)
        for n in range(1, 6):
            exporter.put_market(_trade(n))
            await exporter.put_critical("t:crit:g1", _status(n))
        await exporter.wait_flushed()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert [e.seq for e in _decoded(redis, "t:md:p:A-B:trade")] == [1, 2, 3, 4, 5]
    assert [e.payload.last_seq for e in _decoded(redis, "t:crit:g1")] == [1, 2, 3, 4, 5]  # type: ignore[union-attr]
    assert redis.topics == {"t:md:p:A-B:trade"}
    stats = exporter.statistics()
    assert (stats.critical_written, stats.market_written, stats.topics) == (5, 5, 1)
    assert stats.batches >= 2  # write_batch = 3


async def test_while_the_link_is_down_market_data_is_dropped_and_critical_waits(
    autojump_clock: object,
) -> None:
    redis = FakeRedis()
    exporter = _exporter(redis, critical=2)
    async with trio.open_nursery() as nursery:
        await nursery.start(exporter.serve)
        redis.down = True
        exporter.put_market(_trade(1))  # buffered, then lost with the failed batch
        await trio.testing.wait_all_tasks_blocked()
        assert not exporter.link.up
        exporter.put_market(_trade(2))  # dropped on the spot
        for n in (1, 2):
            await exporter.put_critical("t:crit:g1", _status(n))
        blocked = trio.Event()

        async def third() -> None:
            await exporter.put_critical("t:crit:g1", _status(3))
            blocked.set()

        nursery.start_soon(third)
        await trio.testing.wait_all_tasks_blocked()
        stats = exporter.statistics()
        assert (stats.critical_buffered, stats.critical_waiting, stats.critical_waits) == (2, 1, 1)
        assert stats.market_dropped_link_down == 2
        assert not blocked.is_set()  # backpressure: the producer waits
        await trio.sleep(5)  # reconnect attempts back off meanwhile
        pings = redis.pings
        assert 3 <= pings <= 12  # capped, jittered, not a busy loop
        redis.down = False
        with trio.fail_after(2):
            await blocked.wait()
        await exporter.wait_flushed()
        exporter.put_market(_trade(3))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert [e.payload.last_seq for e in _decoded(redis, "t:crit:g1")] == [1, 2, 3]  # type: ignore[union-attr]
    (after,) = _decoded(redis, "t:md:p:A-B:trade")
    assert (after.seq, after.skipped) == (3, 2)  # the first trade back says two were lost
    assert exporter.link.statistics().outages == 1


def test_an_overflowing_market_buffer_drops_the_oldest() -> None:
    exporter = _exporter(FakeRedis(), market=3)
    for n in range(1, 6):
        exporter.put_market(_trade(n))
    stats = exporter.statistics()
    assert (stats.market_buffered, stats.market_dropped_overflow) == (3, 2)


def test_a_book_that_lost_a_delta_exports_no_delta_until_a_snapshot() -> None:
    exporter = _exporter(FakeRedis(), market=3)
    for n in (1, 2, 3):
        exporter.put_market(_book(Kind.BOOK_DELTA, n))
    exporter.put_market(_book(Kind.BOOK_DELTA, 4))  # overflow: 1 lost, so 2 and 3 go too
    exporter.put_market(_book(Kind.BOOK_DELTA, 5))  # held back
    stats = exporter.statistics()
    assert (stats.market_buffered, stats.books_awaiting_snapshot) == (0, 1)
    assert (stats.market_dropped_overflow, stats.market_held_for_snapshot) == (1, 4)
    exporter.put_market(_book(Kind.BOOK_SNAPSHOT, 6))
    exporter.put_market(_book(Kind.BOOK_DELTA, 7))
    stats = exporter.statistics()
    assert (stats.market_buffered, stats.books_awaiting_snapshot) == (2, 0)


def _ticker(n: int) -> Event:
    payload = Ticker(bid_price="1", bid_size="1", ask_price="2", ask_size="1")
    return Event(event_id=n, kind=Kind.TICKER, provider="p", instrument="A-B", payload=payload)


@pytest.mark.parametrize(("make", "skipped"), [(_trade, 1), (_ticker, 0)])
def test_only_sequenced_kinds_report_what_was_dropped(make: Any, skipped: int) -> None:
    redis = FakeRedis()
    exporter = _exporter(redis)
    exporter.link.failed(OSError("down"), "test")
    exporter.put_market(make(1))
    exporter.link.succeeded()
    exporter.put_market(make(2))
    assert exporter.statistics().market_dropped_link_down == 1
    assert decode_entry(exporter._market[0][1])[0].skipped == skipped
