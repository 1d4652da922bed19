"""The real captures replayed through ``serve_provider`` and a real pipeline: every
Binance book ends LIVE without a gap, all 290 OKX checksums verify, and the events a
subscriber receives form books that never skip an update."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from meltica_trio import ConsumerContext, Event, Kind, PipelineConfig, open_pipeline
from meltica_trio.events import BookDelta, BookState, BookStatus
from meltica_trio.providers import (
    BinanceAdapter,
    OkxAdapter,
    Provider,
    ProviderConfig,
    replay_capture,
)
from meltica_trio.testing import ReplayTransport

DATA = Path(__file__).parents[1] / "providers" / "data"
BINANCE = DATA / "binance-spot-capture.jsonl"
OKX = DATA / "okx-capture.jsonl"
BINANCE_INSTRUMENTS = ("NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR")
OKX_INSTRUMENTS = ("BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT")


@attrs.define(eq=False)
class BookWatcher:
    """A consumer that checks, per book, that each delta continues the last event."""

    kinds: defaultdict[Kind, int] = attrs.field(factory=lambda: defaultdict(int))
    last_seq: dict[str, int | None] = attrs.field(factory=dict)
    statuses: list[tuple[str, BookState]] = attrs.field(factory=list)
    breaks: list[str] = attrs.field(factory=list)
    deltas: defaultdict[str, int] = attrs.field(factory=lambda: defaultdict(int))

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        self.kinds[event.kind] += 1
        key = f"{event.provider}:{event.instrument}"
        if event.kind is Kind.BOOK_STATUS:
            assert isinstance(event.payload, BookStatus)
            self.statuses.append((key, event.payload.state))
            self.last_seq.pop(key, None)
        elif event.kind is Kind.BOOK_SNAPSHOT:
            self.last_seq[key] = event.seq
        elif event.kind is Kind.BOOK_DELTA:
            assert isinstance(event.payload, BookDelta)
            if key not in self.last_seq:
                self.breaks.append(f"{key}: delta {event.seq} before any snapshot")
            elif event.payload.prev_seq != self.last_seq[key]:
                self.breaks.append(f"{key}: prev {event.payload.prev_seq} != {self.last_seq[key]}")
            self.last_seq[key] = event.seq
            self.deltas[key] += 1


async def replay_through_pipeline(
    transport: ReplayTransport,
    provider_of: type[BinanceAdapter] | type[OkxAdapter],
    instruments: tuple[str, ...],
) -> tuple[Provider, BookWatcher]:
    watcher = BookWatcher()
    async with open_pipeline(PipelineConfig(debug=True)) as pipe:
        await pipe.subscribe("watcher", watcher)
        provider = Provider(pipe, provider_of(instruments), transport, config=ProviderConfig())
        async with trio.open_nursery() as nursery:
            await nursery.start(provider.serve)
            await transport.finished.wait()
            await trio.testing.wait_all_tasks_blocked()
            await pipe.wait_idle()
            nursery.cancel_scope.cancel()
    return provider, watcher


async def test_binance_capture_replayed_through_a_pipeline_ends_with_every_book_live() -> None:
    replay = ReplayTransport.from_capture(BINANCE)
    provider, watcher = await replay_through_pipeline(replay, BinanceAdapter, BINANCE_INSTRUMENTS)

    stats = provider.statistics()
    assert [b.state for b in stats.books] == [BookState.LIVE] * 4
    assert [(b.gaps, b.resyncs) for b in stats.books] == [(0, 0)] * 4
    assert (stats.malformed_frames, stats.decode_errors, stats.connects) == (0, 0, 1)
    assert len(replay.rest_requests) == 4
    assert watcher.breaks == []
    assert watcher.kinds[Kind.BOOK_SNAPSHOT] >= 4
    # The same books as the synchronous replay of the core.
    expected = replay_capture(BINANCE, "binance", depth=10)
    for instrument, report in zip(BINANCE_INSTRUMENTS, expected.books.values(), strict=True):
        book = provider.book(instrument).book
        assert (book.top_bids(10), book.top_asks(10)) == (report.bids, report.asks)
        assert provider.book(instrument).statistics().applied == report.statistics.applied


async def test_okx_capture_replayed_through_a_pipeline_verifies_all_290_checksums() -> None:
    replay = ReplayTransport.from_capture(OKX)
    provider, watcher = await replay_through_pipeline(replay, OkxAdapter, OKX_INSTRUMENTS)

    books = provider.statistics().books
    assert sum(b.checksum_ok for b in books) == 290
    assert sum(b.checksum_failed for b in books) == 0
    assert [b.state for b in books] == [BookState.LIVE] * 3
    assert watcher.kinds[Kind.BOOK_DELTA] == 287
    assert watcher.kinds[Kind.TRADE] > 0
    assert watcher.kinds[Kind.TICKER] > 0
    assert replay.sent  # the provider subscribed


@pytest.mark.parametrize("speed", [1.0, 50.0])
async def test_paced_replay_takes_the_captures_time_on_the_trio_clock(
    autojump_clock: trio.testing.MockClock, speed: float
) -> None:
    replay = ReplayTransport.from_capture(OKX, pace=True, speed=speed)
    records = replay.records
    span = max(r.t for r in records if r.kind.value == "ws") - min(
        r.t for r in records if r.kind.value == "ws"
    )
    async with open_pipeline(PipelineConfig(debug=True)) as pipe:
        provider = Provider(pipe, OkxAdapter(OKX_INSTRUMENTS), replay)
        async with trio.open_nursery() as nursery:
            await nursery.start(provider.serve)
            start = trio.current_time()
            await replay.finished.wait()
            elapsed = trio.current_time() - start
            nursery.cancel_scope.cancel()
    assert elapsed == pytest.approx(span / speed, abs=0.01)
    assert sum(b.checksum_ok for b in provider.statistics().books) == 290
