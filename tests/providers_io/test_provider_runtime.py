"""The provider runtime over a scripted FakeTransport, on the mock clock: resyncs stay
per book, bad frames are survived, backoff is capped and jittered, heartbeats and
rotation replace dead or old connections, and giving up is loud."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import pytest
import trio
import trio.testing
from fake_venues import BinanceVenue, OkxVenue, Sink, continuity_breaks

from meltica_trio import Kind
from meltica_trio.events import BookState
from meltica_trio.providers import (
    Backoff,
    BinanceAdapter,
    Heartbeat,
    OkxAdapter,
    Provider,
    ProviderConfig,
    ProviderGaveUpError,
    VenueAdapter,
)
from meltica_trio.testing import FakeConnection, FakeTransport

RUNTIME_LOGGER = "meltica_trio.providers._runtime"
QUIET = Heartbeat(ping=None, ping_after=1e6, dead_after=1e6)
"""A heartbeat that never fires, for tests about something else."""


@attrs.define(eq=False)
class Harness:
    sink: Sink
    fake: FakeTransport
    provider: Provider
    nursery: trio.Nursery


@asynccontextmanager
async def running(
    adapter: VenueAdapter,
    fake: FakeTransport | None = None,
    config: ProviderConfig | None = None,
    rng: Callable[[], float] | None = None,
    start: bool = True,
) -> AsyncIterator[Harness]:
    """A provider serving into a Sink over a FakeTransport; cancelled on exit."""
    sink, fake = Sink(), fake or FakeTransport()
    provider = Provider(sink, adapter, fake, config=config or ProviderConfig())
    if rng is not None:
        provider.rng = rng
    async with trio.open_nursery() as nursery:
        if start:
            await nursery.start(provider.serve)
        yield Harness(sink, fake, provider, nursery)
        nursery.cancel_scope.cancel()


def okx(*instruments: str, **kw: Any) -> OkxAdapter:
    return OkxAdapter(instruments or ("BTC-USDT", "ETH-USDT"), **kw)


def binance(*instruments: str, **kw: Any) -> BinanceAdapter:
    kw.setdefault("heartbeat", QUIET)
    return BinanceAdapter(instruments or ("BTC-USDT", "ETH-USDT"), **kw)


async def live_okx(h: Harness, venue: OkxVenue, conn: FakeConnection) -> None:
    for instrument in h.provider.adapter.instruments:
        await conn.send(venue.snapshot(instrument))
    await h.sink.wait_for(lambda s: s.statuses().count(("BTC-USDT", BookState.LIVE)) >= 1)
    await trio.testing.wait_all_tasks_blocked()


# -- resyncs stay per book ------------------------------------------------------------


async def test_okx_checksum_mismatch_resubscribes_only_that_instrument(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = OkxVenue()
    async with running(okx()) as h:
        conn = await h.fake.accept()
        await live_okx(h, venue, conn)
        await conn.send(venue.update("ETH-USDT"))
        await conn.send(venue.update("BTC-USDT", corrupt=True))
        await conn.send(venue.update("ETH-USDT"))
        sent = await conn.wait_sent(3)
        await trio.testing.wait_all_tasks_blocked()

    unsub, sub = (orjson.loads(m) for m in sent[1:3])
    books_btc = [{"channel": "books", "instId": "BTC-USDT"}]
    assert (unsub, sub) == (
        {"op": "unsubscribe", "args": books_btc},
        {"op": "subscribe", "args": books_btc},
    )
    assert h.sink.statuses("ETH-USDT") == [
        ("ETH-USDT", BookState.SYNCING),
        ("ETH-USDT", BookState.LIVE),
    ]
    assert h.sink.statuses("BTC-USDT")[-1] == ("BTC-USDT", BookState.RESYNCING)
    assert h.sink.count(Kind.BOOK_DELTA, "ETH-USDT") == 2
    eth, btc = h.provider.book("ETH-USDT").statistics(), h.provider.book("BTC-USDT").statistics()
    assert (eth.resyncs, btc.resyncs, btc.checksum_failed) == (0, 1, 1)


async def test_okx_book_is_live_again_after_the_resubscribed_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = OkxVenue()
    async with running(okx("BTC-USDT")) as h:
        conn = await h.fake.accept()
        await live_okx(h, venue, conn)
        await conn.send(venue.update("BTC-USDT", skip=True))
        await conn.wait_sent(3)
        await conn.send(venue.snapshot("BTC-USDT"))
        await conn.send(venue.update("BTC-USDT"))
        await h.sink.wait_for(lambda s: s.count(Kind.BOOK_DELTA) == 1)
    states = [state for _, state in h.sink.statuses()]
    assert states == [BookState.SYNCING, BookState.LIVE, BookState.RESYNCING, BookState.LIVE]
    assert continuity_breaks(h.sink.events) == []
    assert h.provider.book("BTC-USDT").statistics().gaps == 1


async def test_binance_missing_diff_refetches_only_that_symbols_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    btc, eth = BinanceVenue("BTCUSDT"), BinanceVenue("ETHUSDT", update_id=5000)
    fake = FakeTransport()
    for venue in (btc, eth):
        fake.add_rest(f"/api/v3/depth?symbol={venue.symbol}", venue.snapshot())
    async with running(binance(), fake) as h:
        conn = await h.fake.accept()
        for venue in (btc, eth):
            await conn.send(venue.diff())
        await h.sink.wait_for(lambda s: s.statuses().count(("ETH-USDT", BookState.LIVE)) == 1)
        await h.sink.wait_for(lambda s: s.statuses().count(("BTC-USDT", BookState.LIVE)) == 1)
        assert len(fake.rest_requests) == 2
        for _ in range(3):
            await conn.send(btc.diff())
            await conn.send(eth.diff())
        btc.diff()  # lost on the way
        await conn.send(btc.diff())
        await conn.send(eth.diff())
        fake.add_rest("/api/v3/depth?symbol=BTCUSDT", btc.snapshot())
        await conn.send(btc.diff())
        await h.sink.wait_for(lambda s: s.statuses().count(("BTC-USDT", BookState.LIVE)) == 2)
        await trio.testing.wait_all_tasks_blocked()

    # The first answer after the gap is the old snapshot the fake still holds: too old
    # for the buffered diffs, so the assembler asks again and gets the fresh one.
    assert set(fake.rest_requests[2:]) == {
        "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
    }
    assert h.sink.statuses("ETH-USDT") == [
        ("ETH-USDT", BookState.SYNCING),
        ("ETH-USDT", BookState.LIVE),
    ]
    eth_book = h.provider.book("ETH-USDT")
    assert (eth_book.statistics().applied, eth_book.statistics().resyncs) == (5, 0)
    assert eth_book.book.top() == eth.book.top()
    assert continuity_breaks(h.sink.events) == []
    assert h.provider.book("BTC-USDT").book.top() == btc.book.top()


async def test_pipeline_gap_report_resyncs_that_book_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = OkxVenue()
    async with running(okx()) as h:
        conn = await h.fake.accept()
        await live_okx(h, venue, conn)
        h.sink.listeners["okx"]("ETH-USDT", "a subscriber's lane dropped a book delta")
        h.sink.listeners["okx"]("ETH-USDT", "reported twice")
        h.sink.listeners["okx"]("XRP-USDT", "not ours")
        sent = await conn.wait_sent(3)
        await trio.testing.wait_all_tasks_blocked()
    assert [orjson.loads(m)["args"][0]["instId"] for m in sent[1:]] == ["ETH-USDT"] * 2
    assert h.sink.statuses()[-1] == ("ETH-USDT", BookState.RESYNCING)
    assert h.provider.statistics().resyncs_requested == 1


# -- bad frames are survived ----------------------------------------------------------


async def test_malformed_and_oversized_frames_are_counted_logged_and_survived(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    venue = OkxVenue()
    config = ProviderConfig(max_frame_bytes=2000)
    async with running(okx("BTC-USDT"), config=config) as h:
        conn = await h.fake.accept()
        await live_okx(h, venue, conn)
        with caplog.at_level(logging.WARNING, RUNTIME_LOGGER):
            await conn.send(venue.update("BTC-USDT"))
            await conn.send("{not json")
            await conn.send(b"\xff\xfe")
            await conn.send({"arg": {"channel": "books", "instId": "BTC-USDT"}})
            await conn.send("x" * 2001)
            await conn.send(venue.update("BTC-USDT"))
            await conn.send({"event": "error", "code": "60012", "msg": "Invalid request"})
            await conn.send("pong")
            await h.sink.wait_for(lambda s: s.count(Kind.BOOK_DELTA) == 2)
            await trio.testing.wait_all_tasks_blocked()

    stats = h.provider.statistics()
    assert (stats.malformed_frames, stats.decode_errors, stats.oversized_frames) == (2, 1, 1)
    assert (stats.venue_errors, stats.pongs, stats.connects, stats.frames) == (1, 1, 1, 9)
    assert h.provider.book("BTC-USDT").statistics().gaps == 0
    assert continuity_breaks(h.sink.events) == []
    messages = [r.getMessage() for r in caplog.records]
    assert sum("not JSON" in m for m in messages) == 2
    assert any("frame rejected" in m for m in messages)
    assert any("2001 > 2000" in m for m in messages)
    assert any("venue error 60012" in m for m in messages)


async def test_bad_frame_logging_is_throttled_but_counting_is_not(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(okx("BTC-USDT")) as h:
        conn = await h.fake.accept()
        with caplog.at_level(logging.WARNING, RUNTIME_LOGGER):
            for _ in range(50):
                await conn.send("garbage")
            await trio.testing.wait_all_tasks_blocked()
    assert h.provider.statistics().malformed_frames == 50
    assert len(caplog.records) == 10


# -- reconnects -----------------------------------------------------------------------


async def test_reconnect_delays_follow_seeded_jitter_and_stay_under_the_cap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    policy = Backoff(initial=1.0, maximum=8.0, jitter=0.5)
    fake = FakeTransport()
    fake.refuse(6)
    async with running(
        okx("BTC-USDT"),
        fake,
        ProviderConfig(reconnect=policy),
        rng=random.Random(42).random,
        start=False,
    ) as h:
        await h.nursery.start(h.provider.serve)
        await h.fake.accept()
    gaps = [b - a for a, b in zip(fake.open_times, fake.open_times[1:], strict=False)]
    draws = random.Random(42)
    expected = [min(8.0, 2.0**n) * (1 - 0.5 * draws.random()) for n in range(6)]
    assert gaps == pytest.approx(expected)
    assert all(gap <= 8.0 for gap in gaps)
    assert gaps[-1] >= 4.0  # capped at 8, jitter takes at most half
    stats = h.provider.statistics()
    assert (stats.connect_attempts, stats.connects, stats.reconnects) == (7, 1, 0)


def test_backoff_delay_is_capped_even_after_very_many_attempts() -> None:
    policy = Backoff(initial=0.5, maximum=30.0, jitter=0.0)
    assert [policy.delay(n, lambda: 0.0) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert policy.delay(10_000, lambda: 0.0) == 30.0
    assert Backoff(jitter=1.0).delay(3, lambda: 0.999) == pytest.approx(0.002)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=1.5)


async def test_reconnect_resubscribes_and_resyncs_every_book(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = OkxVenue()
    async with running(okx()) as h:
        first = await h.fake.accept()
        await live_okx(h, venue, first)
        first.drop("venue restarting")
        second = await h.fake.accept()
        subscribe = await second.wait_sent(1)
        await trio.testing.wait_all_tasks_blocked()
        for instrument in ("BTC-USDT", "ETH-USDT"):
            await second.send(venue.snapshot(instrument))
            await second.send(venue.update(instrument))
        await h.sink.wait_for(lambda s: s.count(Kind.BOOK_DELTA) == 2)
        await trio.testing.wait_all_tasks_blocked()
        stats = h.provider.statistics()

    assert (stats.connects, stats.reconnects, stats.connected) == (2, 1, True)
    assert subscribe == first.sent[:1]  # the same subscription, and no extra resubscribe
    assert first.closed
    states = {i: [s for _, s in h.sink.statuses(i)] for i in ("BTC-USDT", "ETH-USDT")}
    expected = [
        BookState.SYNCING,
        BookState.LIVE,
        BookState.STALE,
        BookState.RESYNCING,
        BookState.LIVE,
    ]
    assert states == {"BTC-USDT": expected, "ETH-USDT": expected}
    assert continuity_breaks(h.sink.events) == []


async def test_giving_up_publishes_stale_for_every_book_and_raises(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeTransport()
    fake.refuse(3)
    sink = Sink()
    policy = Backoff(initial=1.0, maximum=4.0, max_attempts=3)
    provider = Provider(sink, okx(), fake, config=ProviderConfig(reconnect=policy))
    with pytest.raises(ProviderGaveUpError) as info:
        await provider.serve()
    assert (info.value.provider, info.value.attempts) == ("okx", 3)
    # STALE when the first attempt failed, and again, with the reason, on giving up.
    assert sink.statuses() == [("BTC-USDT", BookState.STALE), ("ETH-USDT", BookState.STALE)] * 2
    assert all("gave up after 3" in getattr(e[3], "reason", "") for e in sink.events[2:])
    assert provider.statistics().give_ups == 1
    assert any(r.levelno == logging.ERROR and "gave up" in r.getMessage() for r in caplog.records)


async def test_giving_up_after_losing_live_books_publishes_a_final_stale_status(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = OkxVenue()
    fake = FakeTransport()
    policy = Backoff(initial=1.0, max_attempts=2)
    with pytest.RaisesGroup(ProviderGaveUpError):
        async with running(okx("BTC-USDT"), fake, ProviderConfig(reconnect=policy)) as h:
            conn = await h.fake.accept()
            await live_okx(h, venue, conn)
            fake.refuse(5)
            conn.drop()
            await trio.sleep_forever()
    statuses = h.sink.statuses()
    assert statuses[-2:] == [("BTC-USDT", BookState.STALE)] * 2
    payload = h.sink.events[-1][3]
    assert "gave up after 2" in getattr(payload, "reason", "")


# -- heartbeats, staleness and rotation -----------------------------------------------


async def test_okx_pings_when_idle_and_keeps_the_connection_on_pong(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(okx("BTC-USDT")) as h:
        conn = await h.fake.accept()
        await conn.wait_sent(1)
        start = trio.current_time()
        await conn.wait_sent(2)
        assert conn.sent[1] == "ping"
        assert trio.current_time() - start == pytest.approx(20.0)
        await conn.send("pong")
        await conn.wait_sent(3)
        assert trio.current_time() - start == pytest.approx(40.0)
    assert h.provider.statistics().connects == 1


async def test_okx_connection_without_pong_is_replaced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(okx("BTC-USDT")) as h:
        first = await h.fake.accept()
        start = trio.current_time()
        await h.fake.accept()
        assert trio.current_time() - start >= 30.0
        assert first.sent[1:] == ["ping"]
        assert first.closed
    assert h.provider.statistics().reconnects == 1


async def test_quiet_live_book_is_marked_stale_then_live_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = OkxVenue()
    async with running(
        okx("BTC-USDT", heartbeat=QUIET), config=ProviderConfig(stale_after=5.0)
    ) as h:
        conn = await h.fake.accept()
        await live_okx(h, venue, conn)
        await h.sink.wait_for(lambda s: ("BTC-USDT", BookState.STALE) in s.statuses())
        await conn.send(venue.update("BTC-USDT"))
        await h.sink.wait_for(lambda s: s.statuses().count(("BTC-USDT", BookState.LIVE)) == 2)
    assert h.provider.statistics().connects == 1


async def test_binance_connection_is_rotated_before_its_24_hour_lifetime(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTransport()
    fake.rest_handler = _never_answers
    async with running(binance("BTC-USDT"), fake) as h:
        await fake.accept()
        await fake.accept()
    assert fake.open_times[1] - fake.open_times[0] == pytest.approx(23.5 * 3600)
    stats = h.provider.statistics()
    assert (stats.rotations, stats.reconnects) == (1, 1)


async def _never_answers(url: str) -> tuple[int, object]:
    await trio.sleep_forever()


async def test_snapshot_fetch_retries_failed_requests_with_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    btc = BinanceVenue()
    fake = FakeTransport()
    url = "/api/v3/depth?symbol=BTCUSDT"
    fake.add_rest(url, {"code": -1003, "msg": "Too many requests"}, status=429)
    fake.add_rest(url, {"lastUpdateId": "bad"})
    fake.add_rest(url, btc.snapshot())
    async with running(binance("BTC-USDT"), fake) as h:
        conn = await fake.accept()
        await conn.send(btc.diff())
        await h.sink.wait_for(lambda s: ("BTC-USDT", BookState.LIVE) in s.statuses())
    stats = h.provider.statistics()
    assert (stats.snapshot_failures, stats.decode_errors, len(fake.rest_requests)) == (2, 1, 3)


async def test_snapshot_request_that_hangs_times_out_and_is_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    btc = BinanceVenue()
    calls = 0

    async def slow_once(url: str) -> tuple[int, object]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await trio.sleep_forever()
        return 200, btc.snapshot()

    fake = FakeTransport(rest_handler=slow_once)
    async with running(binance("BTC-USDT"), fake, ProviderConfig(rest_timeout=3.0)) as h:
        await fake.accept()
        await h.sink.wait_for(lambda s: ("BTC-USDT", BookState.LIVE) in s.statuses())
    assert h.provider.statistics().snapshot_failures == 1
