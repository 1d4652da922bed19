"""The trading switch end to end: pipeline -> gateway -> Binance client -> simulated venue."""

from __future__ import annotations

import attrs
import trio
import trio.testing

from meltica_trio import (
    BinanceOrderConfig,
    ControlResult,
    Event,
    ExecReport,
    Kind,
    Side,
    Trade,
    open_binance_orders,
)
from meltica_trio.consumers import ConsumerContext
from meltica_trio.testing import assert_balanced, open_test_pipeline
from meltica_trio.venue import DEFAULT_API_KEY, DEFAULT_API_SECRET, VenueConfig, open_venue

SETTLE = 5.0
"""Seconds (real time: real sockets) an order may take to reach its owner's lane."""


@attrs.define(eq=False)
class Trader:
    """On every trade, sends one order for the next client order id."""

    sent: int = 0
    results: list[ControlResult] = attrs.field(factory=list)
    reports: list[ExecReport] = attrs.field(factory=list)
    reported: trio.Event = attrs.field(factory=trio.Event)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        if event.kind is Kind.TRADE:
            self.sent += 1
            ctx.submit_order(
                client_order_id=f"o-{self.sent}",
                provider="sim",
                instrument="BTC-USDT",
                side=Side.BUY,
                quantity="0.00100",
                price="50000.00",
            )
        elif isinstance(event.payload, ControlResult):
            self.results.append(event.payload)
        elif isinstance(event.payload, ExecReport):
            self.reports.append(event.payload)
            self.reported.set()


async def _trade(pipe: object) -> None:
    trade = Trade(price="60000.00", size="0.1", side=Side.BUY, trade_id="1", trade_ts=0)
    event = pipe.new_event(  # type: ignore[attr-defined]
        kind=Kind.TRADE, provider="sim", instrument="BTC-USDT", payload=trade
    )
    await pipe.publish(event)  # type: ignore[attr-defined]


async def test_switch_off_sends_nothing_to_the_venue_and_switch_on_does() -> None:
    trader = Trader()
    async with (
        open_venue(VenueConfig(market=None)) as venue,
        open_binance_orders(
            BinanceOrderConfig(
                api_key=DEFAULT_API_KEY,
                api_secret=DEFAULT_API_SECRET,
                rest_url=venue.http_url,
                ws_url=venue.ws_url,
                provider="sim",
            )
        ) as client,
        open_test_pipeline(order_clients=[client]) as pipe,
    ):
        await pipe.subscribe("trader", trader, kinds=[Kind.TRADE])
        await _trade(pipe)  # the switch starts off: refused in the runtime
        await trio.testing.wait_all_tasks_blocked()
        assert [r.ok for r in trader.results] == [False]
        assert trader.results[0].reason == "trading switch is off for consumer 'trader'"
        assert sum(venue.exchange.placed.values()) == 0

        await pipe.control.set_trading_switch("trader", True)
        await _trade(pipe)
        with trio.fail_after(SETTLE):
            await trader.reported.wait()
        assert sum(venue.exchange.placed.values()) == 1
        assert trader.reports[0].client_order_id == "o-2"
    assert_balanced(pipe)
