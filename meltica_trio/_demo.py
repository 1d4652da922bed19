"""The demo main job: a synthetic two-venue market through the whole data plane.

Until the venue adapters and the simulated exchange land, the sources here are
in-process: a seeded random walk per (venue, instrument) publishing trades,
tickers and book statuses at a steady rate. Everything after ``publish`` is the
real pipeline: ordering, routing, pooled fan-out, lanes with delivery classes, and
consumer runtimes, including a deliberately slow consumer and one that fails now
and then.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

import orjson
import trio

from meltica_trio._config import PipelineConfig
from meltica_trio._dashboard import run_dashboard
from meltica_trio._pipeline import Pipeline, open_pipeline
from meltica_trio.consumers import ConsumerContext
from meltica_trio.events import BookState, BookStatus, Event, Kind, Side, Ticker, Trade

VENUES: Final = ("sim-a", "sim-b")
INSTRUMENTS: Final = ("BTC-USDT", "ETH-USDT")
_START_PRICE: Final = {"BTC-USDT": 57_000.0, "ETH-USDT": 3_500.0}
_PUBLISH_SLICE: Final = 0.01
"""Seconds of traffic published per tick of a source (100 ticks a second)."""


async def _source(pipe: Pipeline, venue: str, instrument: str, rate: int, seed: int) -> None:
    """Publish ``rate`` events/s for one (venue, instrument) until cancelled."""
    rng = random.Random(seed)
    price = _START_PRICE[instrument]
    seq = 0
    status = BookStatus(state=BookState.LIVE, reason="demo source started")
    await pipe.publish(
        pipe.new_event(
            kind=Kind.BOOK_STATUS, provider=venue, instrument=instrument, payload=status
        )
    )
    per_tick = max(1, round(rate * _PUBLISH_SLICE))
    deadline = trio.current_time()
    while True:
        for _ in range(per_tick):
            seq += 1
            price *= 1 + rng.gauss(0, 0.0002)
            if seq % 4:
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                size = f"{rng.uniform(0.001, 0.5):.4f}"
                payload: Trade | Ticker = Trade(
                    price=f"{price:.2f}",
                    size=size,
                    side=side,
                    trade_id=str(seq),
                    trade_ts=time.time_ns(),
                )
                kind = Kind.TRADE
            else:
                payload = Ticker(
                    bid_price=f"{price - 0.05:.2f}",
                    bid_size="1.5",
                    ask_price=f"{price + 0.05:.2f}",
                    ask_size="2.0",
                )
                kind = Kind.TICKER
            event = pipe.new_event(
                kind=kind, provider=venue, instrument=instrument, seq=seq, payload=payload
            )
            await pipe.publish(event)
        deadline += _PUBLISH_SLICE
        await trio.sleep_until(deadline)


class _Vwap:
    """A sync strategy: volume-weighted average price per instrument, exact decimals."""

    def __init__(self) -> None:
        self.notional: dict[str, Decimal] = {}
        self.volume: dict[str, Decimal] = {}

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        trade = event.payload
        if isinstance(trade, Trade):
            size = Decimal(trade.size)
            self.notional[event.instrument] = (
                self.notional.get(event.instrument, Decimal()) + Decimal(trade.price) * size
            )
            self.volume[event.instrument] = self.volume.get(event.instrument, Decimal()) + size


def _flaky(every: int) -> Callable[[Event, ConsumerContext], None]:
    seen = 0

    def flaky(event: Event, ctx: ConsumerContext) -> None:
        nonlocal seen
        seen += 1
        if seen % every == 0:
            raise RuntimeError(f"demo failure on purpose (every {every}th event)")

    return flaky


async def _slow(event: Event, ctx: ConsumerContext) -> None:
    await trio.sleep(0.002)


async def _watch_status(event: Event, ctx: ConsumerContext) -> None:
    await trio.lowlevel.checkpoint()


async def run_demo(
    seconds: float, consumers: int, rate: int, *, debug: bool, dashboard: bool = False
) -> dict[str, Any]:
    """Run the demo for ``seconds`` (with a live dashboard if asked) and return its summary."""
    vwap = _Vwap()
    menu: list[tuple[str, Any, dict[str, Any]]] = [
        ("vwap", vwap, {"kinds": [Kind.TRADE]}),
        ("tickers", lambda e, c: None, {"kinds": [Kind.TICKER]}),
        ("slow", _slow, {"instruments": ["BTC-USDT"], "lane_capacity": 256}),
        ("flaky", _flaky(500), {}),
        ("status", _watch_status, {"kinds": [Kind.BOOK_STATUS]}),
    ]
    started = time.perf_counter()
    async with open_pipeline(PipelineConfig(debug=debug)) as pipe:
        for index in range(consumers):
            name, fn, filters = menu[index % len(menu)]
            await pipe.subscribe(f"{name}-{index}", fn, **filters)
        async with trio.open_nursery() as sources:
            for n, (venue, instrument) in enumerate((v, i) for v in VENUES for i in INSTRUMENTS):
                sources.start_soon(_source, pipe, venue, instrument, rate // 4, n)
            if dashboard:
                sources.start_soon(functools.partial(run_dashboard, pipe))
            await trio.sleep(seconds)
            sources.cancel_scope.cancel(reason="demo time is up")
        with trio.move_on_after(2):
            await pipe.wait_idle()
        stats = pipe.statistics()
    elapsed = time.perf_counter() - started
    p99s = sorted(c.delivery.p99_ns for c in stats.consumers) or [0]
    return {
        "seconds": round(elapsed, 2),
        "events": stats.fanout.events,
        "deliveries": stats.fanout.deliveries,
        "deliveries_per_s": round(stats.fanout.deliveries / elapsed),
        "latency_p99_ms": round(p99s[len(p99s) // 2] / 1e6, 3),
        "latency_p99_max_ms": round(p99s[-1] / 1e6, 3),
        "consumers": {
            c.consumer_id: {
                "handled": c.handled,
                "failed": c.failed,
                "p99_ms": round(c.delivery.p99_ns / 1e6, 3),
            }
            for c in stats.consumers
        },
        "lanes": {
            lane.consumer_id: {
                "coalesced": lane.coalesced,
                "skipped": lane.skipped,
                "high_water": lane.high_water,
            }
            for lane in stats.lanes
        },
        "dlq": stats.dlq.recorded,
        "pool_high_water": stats.pool.high_water,
        "leases_outstanding": len(pipe.recycler.leak_report().leases),
        "vwap": {i: str(vwap.notional[i] / vwap.volume[i]) for i in vwap.volume if vwap.volume[i]},
    }


def print_summary(summary: dict[str, Any]) -> None:
    """The demo's summary as a short human-readable report."""
    print("meltica-trio demo: synthetic venues -> ordering -> fan-out -> lanes -> consumers")
    print("  (providers, venues and orders arrive in later releases; see README Status)")
    print(
        f"  {summary['events']:,} events, {summary['deliveries']:,} deliveries "
        f"in {summary['seconds']} s ({summary['deliveries_per_s']:,}/s)"
    )
    print(
        f"  p99 ingest->handler: median consumer {summary['latency_p99_ms']} ms, "
        f"slowest {summary['latency_p99_max_ms']} ms"
    )
    for consumer_id, c in summary["consumers"].items():
        lane = summary["lanes"][consumer_id]
        print(
            f"  {consumer_id:<12} handled {c['handled']:>8,}  failed {c['failed']:>5}"
            f"  p99 {c['p99_ms']:>8} ms  coalesced {lane['coalesced']:>6}"
            f"  skipped {lane['skipped']:>6}"
        )
    print(f"  DLQ entries: {summary['dlq']}   pool high water: {summary['pool_high_water']}")
    print(f"  VWAP: {', '.join(f'{k} {Decimal(v):.2f}' for k, v in summary['vwap'].items())}")
    print(f"  leases outstanding after shutdown: {summary['leases_outstanding']}")


def write_summary(summary: dict[str, Any], path: str) -> None:
    """Write the summary as JSON."""
    with open(path, "wb") as file:
        file.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
