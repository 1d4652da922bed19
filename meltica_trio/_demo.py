"""The demo main job: two simulated venues, real sockets, the whole pipeline, orders.

Two simulated Binance-compatible venues run on localhost. A provider per venue
streams their books, trades and tickers over real WebSocket and REST connections;
the orchestrator merges the two venues' BTC-USDT tickers; strategies receive it
all through the pipeline (some async, one slow, one that fails now and then) and
several place orders through the order gateway with their trading switch on. At
the end the demo audits the venues against what the strategies saw: every order
placed once, every execution report delivered, every lease returned.
"""

from __future__ import annotations

import functools
import sys
import time
from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Any, Final

import attrs
import orjson
import trio

from meltica_trio._config import PipelineConfig
from meltica_trio._dashboard import Extra, run_dashboard
from meltica_trio._pipeline import Pipeline, open_pipeline
from meltica_trio.consumers import ConsumerContext
from meltica_trio.events import (
    BookStatus,
    Event,
    ExecReport,
    Kind,
    OrderState,
    Side,
    Ticker,
    Trade,
)
from meltica_trio.orchestrator import MergeRule
from meltica_trio.orders import (
    BinanceOrderClient,
    BinanceOrderConfig,
    OrderKey,
    open_binance_orders,
    venue_client_order_id,
)
from meltica_trio.providers import BinanceAdapter, Provider, open_network_transport
from meltica_trio.venue import (
    DEFAULT_ACCOUNT,
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    MarketConfig,
    Venue,
    VenueConfig,
    open_venue,
)

VENUES: Final = ("sim-a", "sim-b")
INSTRUMENTS: Final = ("BTC-USDT", "ETH-USDT")
ORDER_SIZE: Final = "0.00100"
"""BTC per demo order: small against the synthetic books, so fills are common."""
MARKET_RATE: Final = 100.0
"""Synthetic market actions per second per symbol on each venue: lively, yet light
enough that two venues, their providers and the pipeline share one core easily."""
SETTLE_SECONDS: Final = 3.0
"""How long the demo waits, after the market stops, for the last reports to arrive."""


@attrs.define(eq=False)
class Trader:
    """A strategy: on every ``every``-th BTC ticker it crosses the spread on that venue.

    Every tenth order is sent twice with the same client order id, to show that the
    gateway never makes a second venue order of it.
    """

    consumer_id: str
    every: int
    max_orders: int
    ticks: int = 0
    sent: int = 0
    reports: int = 0
    last: dict[str, ExecReport] = attrs.field(factory=dict)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        payload = event.payload
        if isinstance(payload, ExecReport):
            self.reports += 1
            self.last[payload.client_order_id] = payload
        elif isinstance(payload, Ticker) and event.instrument == "BTC-USDT":
            self.ticks += 1
            if self.ticks % self.every == 0 and self.sent < self.max_orders:
                self._trade(event.provider, payload, ctx)

    def _trade(self, venue: str, top: Ticker, ctx: ConsumerContext) -> None:
        self.sent += 1
        buy = self.sent % 2 == 1
        order = functools.partial(
            ctx.submit_order,
            client_order_id=f"{self.consumer_id}-{self.sent}",
            provider=venue,
            instrument="BTC-USDT",
            side=Side.BUY if buy else Side.SELL,
            quantity=ORDER_SIZE,
            price=top.ask_price if buy else top.bid_price,
        )
        order()
        if self.sent % 10 == 0:
            order()  # the same client order id again: answered from the ledger


@attrs.define(eq=False)
class Vwap:
    """A sync strategy: volume-weighted average price per instrument, exact decimals."""

    notional: dict[str, Decimal] = attrs.field(factory=dict)
    volume: dict[str, Decimal] = attrs.field(factory=dict)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        trade = event.payload
        if isinstance(trade, Trade):
            size = Decimal(trade.size)
            key = event.instrument
            self.notional[key] = self.notional.get(key, Decimal()) + Decimal(trade.price) * size
            self.volume[key] = self.volume.get(key, Decimal()) + size


def _flaky(every: int) -> Any:
    seen = 0

    def flaky(event: Event, ctx: ConsumerContext) -> None:
        nonlocal seen
        seen += 1
        if seen % every == 0:
            raise RuntimeError(f"demo failure on purpose (every {every}th event)")

    return flaky


async def _slow(event: Event, ctx: ConsumerContext) -> None:
    await trio.sleep(0.002)


@attrs.define(eq=False)
class BookWatch:
    """Keeps the latest status of every book, for the dashboard."""

    states: dict[str, str] = attrs.field(factory=dict)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        if isinstance(event.payload, BookStatus):
            self.states[f"{event.provider} {event.instrument}"] = event.payload.state.value


def _panels(pipe: Pipeline, books: BookWatch, traders: list[Trader]) -> Extra:
    def panels() -> dict[str, dict[str, str]]:
        orders = pipe.statistics().orders
        fills = sum(1 for t in traders for r in t.last.values() if r.state is OrderState.FILLED)
        return {
            "books": dict(sorted(books.states.items())),
            "orders": {
                "submitted / at venues": f"{orders.submitted} / {orders.venue_orders}",
                "duplicate submits refused": str(orders.duplicates_refused),
                "retries / reconciled": f"{orders.retries} / {orders.reconciled}",
                "exec reports delivered": str(orders.exec_reports),
                "orders filled": str(fills),
            },
        }

    return panels


async def _merged(event: Event, ctx: ConsumerContext) -> None:
    await trio.lowlevel.checkpoint()


async def _open_venues(stack: AsyncExitStack) -> tuple[list[Venue], list[BinanceOrderClient]]:
    """Start the simulated venues and an order client for each, closed with ``stack``."""
    venues = [
        await stack.enter_async_context(
            open_venue(VenueConfig(seed=seed, market=MarketConfig(rate=MARKET_RATE)))
        )
        for seed in range(1, len(VENUES) + 1)
    ]
    clients = [
        await stack.enter_async_context(
            open_binance_orders(
                BinanceOrderConfig(
                    api_key=DEFAULT_API_KEY,
                    api_secret=DEFAULT_API_SECRET,
                    rest_url=venue.http_url,
                    ws_url=venue.ws_url,
                    provider=name,
                )
            )
        )
        for name, venue in zip(VENUES, venues, strict=True)
    ]
    return venues, clients


async def _subscribe_all(pipe: Pipeline, consumers: int, books: BookWatch) -> list[Trader]:
    traders: list[Trader] = []
    await pipe.subscribe("books", books, kinds=[Kind.BOOK_STATUS])
    menu: list[tuple[str, Any, dict[str, Any]]] = [
        ("vwap", Vwap(), {"kinds": [Kind.TRADE]}),
        ("trader", None, {"kinds": [Kind.TICKER]}),
        ("slow", _slow, {"instruments": ["BTC-USDT"], "lane_capacity": 256}),
        ("flaky", _flaky(500), {}),
        ("merged", _merged, {"kinds": []}),
    ]
    for index in range(consumers):
        name, fn, filters = menu[index % len(menu)]
        consumer_id = f"{name}-{index}"
        if fn is None:
            fn = Trader(consumer_id, every=5 + index, max_orders=60)
            traders.append(fn)
        await pipe.subscribe(consumer_id, fn, **filters)
        if name == "trader":
            await pipe.control.set_trading_switch(consumer_id, True)
        if name == "merged":
            await pipe.control.subscribe_merged(consumer_id, "BTC-USDT")
    return traders


async def run_demo(
    seconds: float,
    consumers: int,
    *,
    debug: bool,
    dashboard: bool = False,
    metrics_port: int | None = None,
    dlq_path: str | None = None,
) -> dict[str, Any]:
    """Run the demo for ``seconds`` (with a live dashboard if asked) and return its summary.

    ``metrics_port`` serves Prometheus metrics while it runs (its URL goes to
    stderr); ``dlq_path`` appends the failing strategy's dead letters to that file.
    """
    started = time.perf_counter()
    merge = MergeRule(
        name="btc-top",
        instrument="BTC-USDT",
        kind=Kind.TICKER,
        providers=VENUES,
        window=0.05,
        max_count=16,
    )
    config = PipelineConfig(
        debug=debug, merges=[merge], metrics_port=metrics_port, dlq_path=dlq_path
    )
    async with AsyncExitStack() as stack:
        venues, clients = await _open_venues(stack)
        transport = await stack.enter_async_context(open_network_transport())
        pipe = await stack.enter_async_context(open_pipeline(config, order_clients=clients))
        if pipe.metrics is not None:
            print(f"metrics: {pipe.metrics.url}", file=sys.stderr, flush=True)
        books = BookWatch()
        traders = await _subscribe_all(pipe, consumers, books)
        async with trio.open_nursery() as nursery:
            for name, venue in zip(VENUES, venues, strict=True):
                adapter = BinanceAdapter(
                    INSTRUMENTS, ws_url=venue.ws_url, rest_url=venue.http_url, provider=name
                )
                provider = Provider(pipe, adapter, transport)
                if pipe.metrics is not None:
                    pipe.metrics.watch(provider)
                await nursery.start(provider.serve)
            if dashboard:
                extra = _panels(pipe, books, traders)
                nursery.start_soon(functools.partial(run_dashboard, pipe, extra=extra))
            await trio.sleep(seconds)
            nursery.cancel_scope.cancel(reason="demo time is up")
        await _settle(pipe, venues, traders)
        stats = pipe.statistics()
    return _summary(stats, pipe, venues, traders, time.perf_counter() - started)


async def _settle(pipe: Pipeline, venues: list[Venue], traders: list[Trader]) -> None:
    """Wait, bounded, until every strategy heard the final fills of its orders."""
    with trio.move_on_after(SETTLE_SECONDS):
        # Polling: a once-per-demo wait on state spread over two venues and a gateway.
        while pipe.statistics().orders.queued or _audit(venues, traders)[1]:  # noqa: ASYNC110
            await trio.sleep(0.05)


def _sent(venues: list[Venue]) -> int:
    return sum(venue.exchange.reports_sent[DEFAULT_ACCOUNT] for venue in venues)


def _delivered(traders: list[Trader]) -> int:
    return sum(trader.reports for trader in traders)


def _audit(venues: list[Venue], traders: list[Trader]) -> tuple[int, int]:
    """(orders at the venues, orders whose filled quantity their owner never heard).

    Each venue order of the demo account is looked up by its venue client order id
    and compared with the last ExecReport its strategy received for it.
    """
    heard = {
        venue_client_order_id(OrderKey(trader.consumer_id, cid)): report
        for trader in traders
        for cid, report in trader.last.items()
    }
    placed = unheard = 0
    for venue in venues:
        for account, vcid in venue.exchange.placed:
            if account != DEFAULT_ACCOUNT:
                continue
            placed += 1
            view = venue.engine("BTCUSDT").order(account, client_order_id=vcid)
            report = heard.get(vcid)
            if report is None or Decimal(report.filled) != view.filled:
                unheard += 1
    return placed, unheard


def _summary(
    stats: Any, pipe: Pipeline, venues: list[Venue], traders: list[Trader], elapsed: float
) -> dict[str, Any]:
    p99s = sorted(c.delivery.p99_ns for c in stats.consumers) or [0]
    ours = [
        count
        for venue in venues
        for (acct, _), count in venue.exchange.placed.items()
        if acct == DEFAULT_ACCOUNT
    ]
    placed, unheard = _audit(venues, traders)
    return {
        "seconds": round(elapsed, 2),
        "events": stats.fanout.events,
        "deliveries": stats.fanout.deliveries,
        "deliveries_per_s": round(stats.fanout.deliveries / elapsed),
        "latency_p99_ms": round(p99s[len(p99s) // 2] / 1e6, 3),
        "latency_p99_max_ms": round(p99s[-1] / 1e6, 3),
        "orders_submitted": stats.orders.submitted,
        "duplicate_submits_refused": stats.orders.duplicates_refused,
        "venue_orders": placed,
        "duplicate_orders": sum(count - 1 for count in ours if count > 1),
        "exec_reports_sent_by_venue": _sent(venues),
        "exec_reports_delivered": _delivered(traders),
        "exec_reports_lost": unheard,
        "exec_reports_emitted": stats.orders.exec_reports,
        "merged_events": stats.merge.emitted,
        "merge": attrs.asdict(stats.merge),
        "dlq": stats.dlq.recorded,
        "pool_high_water": stats.pool.high_water,
        "leases_outstanding": len(pipe.recycler.leak_report().leases),
        "consumers": {
            c.consumer_id: {
                "handled": c.handled,
                "failed": c.failed,
                "p99_ms": round(c.delivery.p99_ns / 1e6, 3),
            }
            for c in stats.consumers
        },
    }


def print_summary(summary: dict[str, Any]) -> None:
    """The demo's summary as a short human-readable report."""
    print("meltica-trio demo: 2 simulated venues -> providers -> pipeline -> strategies -> orders")
    rows = (
        ("events / deliveries", f"{summary['events']:,} / {summary['deliveries']:,}"),
        ("deliveries/s", f"{summary['deliveries_per_s']:,}"),
        (
            "p99 ingest->handler",
            f"{summary['latency_p99_ms']} ms median consumer, "
            f"{summary['latency_p99_max_ms']} ms slowest",
        ),
        ("merged BTC-USDT views", f"{summary['merged_events']:,}"),
        (
            "orders submitted / at venues",
            f"{summary['orders_submitted']} / {summary['venue_orders']}",
        ),
        ("duplicate submits refused", f"{summary['duplicate_submits_refused']}"),
        ("duplicate venue orders", f"{summary['duplicate_orders']}"),
        ("exec reports sent by venues", f"{summary['exec_reports_sent_by_venue']}"),
        (
            "exec reports emitted / delivered",
            f"{summary['exec_reports_emitted']} / {summary['exec_reports_delivered']}",
        ),
        ("orders whose fills went unheard", f"{summary['exec_reports_lost']}"),
        ("DLQ entries", f"{summary['dlq']}"),
        ("leases outstanding", f"{summary['leases_outstanding']}"),
    )
    for label, value in rows:
        print(f"  {label:<30} {value}")


def write_summary(summary: dict[str, Any], path: str) -> None:
    """Write the summary as JSON (called outside the trio loop)."""
    with open(path, "wb") as file:
        file.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
