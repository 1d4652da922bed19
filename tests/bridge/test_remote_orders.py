"""Orders from a worker: control stream -> order gateway -> simulated venue -> critical stream."""

from __future__ import annotations

import attrs
import coredis
import trio
from bridge_helpers import SETTLE, bridge_config, publish_trade, worker_config

from meltica_trio import (
    BinanceOrderConfig,
    ControlAck,
    ControlResult,
    Event,
    ExecReport,
    Kind,
    OrderState,
    Side,
    open_binance_orders,
)
from meltica_trio.bridge import StreamNames, open_bridge, open_worker
from meltica_trio.consumers import ConsumerContext
from meltica_trio.testing import assert_balanced, open_test_pipeline
from meltica_trio.venue import DEFAULT_API_KEY, DEFAULT_API_SECRET, VenueConfig, open_venue


@attrs.define(eq=False)
class RemoteTrader:
    """On its first trade, submits the same order twice (a retry); records every answer."""

    acks: list[ControlAck] = attrs.field(factory=list)
    results: list[ControlResult] = attrs.field(factory=list)
    reports: list[ExecReport] = attrs.field(factory=list)
    changed: trio.Event = attrs.field(factory=trio.Event)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        payload = event.payload
        if event.kind is Kind.TRADE and not self.acks and not self.results:
            for _ in range(2):
                ctx.submit_order(
                    client_order_id="r-1",
                    provider="sim",
                    instrument="BTC-USDT",
                    side=Side.BUY,
                    quantity="0.00100",
                    price="50000.00",
                    decision_id="d-1",
                )
        elif isinstance(payload, ControlAck):
            self.acks.append(payload)
        elif isinstance(payload, ControlResult):
            self.results.append(payload)
        elif isinstance(payload, ExecReport):
            self.reports.append(payload)
        self.changed.set()

    async def wait(self, done: object) -> None:
        with trio.fail_after(SETTLE):
            while not done():  # type: ignore[operator]
                self.changed = trio.Event()
                await self.changed.wait()


async def test_a_remote_order_reaches_the_venue_once_and_its_reports_come_back(
    redis_url: str, redis_prefix: str
) -> None:
    trader = RemoteTrader()
    async with open_venue(VenueConfig(market=None)) as venue:
        orders = BinanceOrderConfig(
            api_key=DEFAULT_API_KEY,
            api_secret=DEFAULT_API_SECRET,
            rest_url=venue.http_url,
            ws_url=venue.ws_url,
            provider="sim",
        )
        async with (
            open_binance_orders(orders) as client,
            open_test_pipeline(order_clients=[client]) as pipe,
            open_bridge(pipe, bridge_config(redis_url, redis_prefix)) as bridge,
            open_worker(worker_config(redis_url, redis_prefix, trading=True), trader) as worker,
        ):
            await bridge.wait_attached("g1")
            await publish_trade(pipe, 1)
            await trader.wait(lambda: len(trader.results) == 2 and trader.reports)
            placed = sum(venue.exchange.placed.values())
            stats = worker.statistics()
            control = bridge.statistics().control
    assert_balanced(pipe)
    assert placed == 1
    assert [(a.command, a.accepted) for a in trader.acks] == [("submit_order", True)] * 2
    assert [r.ok for r in trader.results] == [True, True]
    assert trader.reports[0].client_order_id == "r-1"
    assert trader.reports[0].consumer_id == "g1"
    assert trader.reports[0].state in (OrderState.ACK, OrderState.FILLED, OrderState.PARTIAL)
    assert pipe.statistics().orders.duplicates_refused == 1
    assert (stats.forwarder.forwarded, control.commands) == (2, 2)


async def test_a_worker_with_trading_off_sends_nothing(redis_url: str, redis_prefix: str) -> None:
    trader = RemoteTrader()
    names = StreamNames(redis_prefix)
    async with (
        coredis.Redis.from_url(redis_url) as client,
        open_test_pipeline() as pipe,
        open_bridge(pipe, bridge_config(redis_url, redis_prefix)) as bridge,
        open_worker(worker_config(redis_url, redis_prefix), trader) as worker,
    ):
        await bridge.wait_attached("g1")
        await publish_trade(pipe, 1)
        await trader.wait(lambda: len(trader.results) == 2)
        entries = await client.xrange(names.control)
        stats = worker.statistics()
    assert [r.reason for r in trader.results] == ["trading switch is off for consumer 'g1'"] * 2
    assert [dict(e.field_values)[b"t"] for e in entries] == [b"attach"]  # no command left
    assert stats.forwarder.forwarded == 0
    assert bridge.statistics().control.commands == 0
