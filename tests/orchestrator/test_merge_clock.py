"""The Merger inside a trio loop on MockClock: windows close at their deadline in trio time.

The loop below is the shape the orchestrator task takes (wait for the next event or
the next window deadline, whichever comes first), as the dispatcher does for ordering.
"""

from __future__ import annotations

import math

import attrs
import pytest
import trio
import trio.testing

from meltica_trio import Event, EventPool, Kind, MergedTopOfBook, Recycler, Ticker
from meltica_trio.orchestrator import Merger, MergeRule

_RULE = MergeRule(
    instrument="BTC-USDT", kind=Kind.TICKER, providers={"binance", "okx"}, window=0.5, max_count=4
)


@attrs.define(eq=False)
class _Loop:
    recycler: Recycler
    pool: EventPool[Event]
    merger: Merger
    emitted: list[tuple[float, Event]] = attrs.field(factory=list)

    def emit(self, event: Event) -> None:
        self.emitted.append((trio.current_time(), event))

    async def serve(self, receive: trio.MemoryReceiveChannel[Event]) -> None:
        with receive:
            while True:
                with trio.move_on_at(self.merger.next_deadline()):
                    try:
                        event = await receive.receive()
                    except trio.EndOfChannel:
                        return
                    self.merger.offer(event, trio.current_time(), self.emit)
                    self.recycler.recycle(event)  # passed on downstream in the pipeline
                self.merger.expire(trio.current_time(), self.emit)

    def ticker(self, provider: str, seq: int) -> Event:
        event = self.pool.acquire_nowait()
        event.kind, event.provider, event.instrument, event.seq = (
            Kind.TICKER,
            provider,
            "BTC-USDT",
            seq,
        )
        event.payload = Ticker(bid_price="1", bid_size="1", ask_price="2", ask_size="1")
        return event


async def _run(recycler: Recycler, script: list[tuple[float, str, int]]) -> _Loop:
    pool = EventPool(Event, recycler=recycler, capacity=16, name="clock")
    loop = _Loop(recycler, pool, Merger(pool, recycler, [_RULE]))
    send, receive = trio.open_memory_channel[Event](4)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(loop.serve, receive)
        with send:
            for delay, provider, seq in script:
                await trio.sleep(delay)
                await send.send(loop.ticker(provider, seq))
            await trio.sleep(10)  # let every window's time run out
    return loop


async def test_a_window_closes_exactly_at_its_deadline_on_the_trio_clock(
    recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    start = trio.current_time()
    loop = await _run(recycler, [(1.0, "binance", 1), (0.2, "okx", 1), (0.5, "okx", 2)])
    ((closed_at, merged),) = loop.emitted
    assert closed_at == pytest.approx(start + 1.5)  # opened at +1.0, window 0.5 s
    assert isinstance(merged.payload, MergedTopOfBook)
    stats = loop.merger.statistics()
    # okx's second ticker (at +1.7) opened a window that timed out without binance.
    assert (stats.emitted, stats.suppressed, stats.closed_by_time) == (1, 1, 2)
    assert loop.merger.next_deadline() == math.inf
    recycler.recycle(merged)


async def test_a_late_fragment_is_dropped_in_a_running_loop(
    recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    loop = await _run(recycler, [(0.0, "binance", 7), (0.1, "okx", 3), (1.0, "binance", 6)])
    assert len(loop.emitted) == 1
    assert loop.merger.statistics().late == 1
    recycler.recycle_all([event for _, event in loop.emitted])
