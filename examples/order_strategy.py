"""An order strategy with its trading switch, on two simulated venues.

The strategy watches the merged BTC-USDT view of two venues and, every few views,
buys on the venue with the lowest ask or sells on the venue with the highest bid,
crossing the spread with a small limit order. Its trading switch starts off (fail
closed): its first order is refused inside the consumer runtime and never reaches a
venue. The operator then turns the switch on, orders go through the order gateway to
the venues, and every execution report comes back to the strategy's own lane.

    python examples/order_strategy.py            # runs for up to 15 seconds
    python examples/order_strategy.py --seconds 4
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Final

import attrs
import trio

from meltica_trio import (
    BinanceAdapter,
    BinanceOrderConfig,
    ConsumerContext,
    ControlResult,
    Event,
    ExecReport,
    Kind,
    MergedTopOfBook,
    MergeRule,
    OrderState,
    PipelineConfig,
    Side,
    VenueConfig,
    VenueOrderClient,
    open_binance_orders,
    open_network_transport,
    open_pipeline,
    open_venue,
    serve_provider,
)
from meltica_trio.venue import DEFAULT_API_KEY, DEFAULT_API_SECRET, MarketConfig

VENUES: Final = ("sim-a", "sim-b")
ORDER_SIZE: Final = "0.00100"
"""BTC per order: small against the synthetic books, so orders fill at once."""
DONE: Final = frozenset(
    {OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED}
)
"""States an order never leaves."""


# --8<-- [start:strategy]
@attrs.define(eq=False)
class SpreadTaker:
    """Every ``every``-th merged view, crosses the spread on the venue that quotes best."""

    every: int = 5
    max_orders: int = 4
    views: int = 0
    sent: int = 0
    expected: set[str] = attrs.field(factory=set)
    refused: list[str] = attrs.field(factory=list)
    states: dict[str, OrderState] = attrs.field(factory=dict)
    changed: trio.Event = attrs.field(factory=trio.Event)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        payload = event.payload
        if isinstance(payload, MergedTopOfBook):
            self.on_top(event, payload, ctx)
        elif isinstance(payload, ControlResult) and not payload.ok:
            # A refusal: by the trading switch, the gateway or the venue.
            print(f"{ctx.consumer_id}: {payload.command} refused: {payload.reason}")
            self.refused.append(payload.reason or "")
        elif isinstance(payload, ExecReport):
            print(
                f"{ctx.consumer_id}: {payload.client_order_id} on {event.provider}: "
                f"{payload.state.value}, filled {payload.filled} of {payload.quantity}"
            )
            self.states[payload.client_order_id] = payload.state
        self.changed.set()

    def on_top(self, event: Event, top: MergedTopOfBook, ctx: ConsumerContext) -> None:
        self.views += 1
        if self.views % self.every or self.sent >= self.max_orders:
            return
        buy = self.sent % 2 == 0
        venue, level = (
            (top.best_ask_provider, top.best_ask) if buy else (top.best_bid_provider, top.best_bid)
        )
        if venue is None or level is None:
            return
        self.sent += 1
        client_order_id = f"{ctx.consumer_id}-{event.seq}"
        if ctx.trading_enabled:
            self.expected.add(client_order_id)  # else the runtime refuses it
        ctx.submit_order(
            # Derived from the merged event: a repeat of this decision is the same order.
            client_order_id=client_order_id,
            provider=venue,
            instrument=event.instrument,
            side=Side.BUY if buy else Side.SELL,
            quantity=ORDER_SIZE,
            price=level[0],
        )

    def finished(self) -> bool:
        """Every order decided is refused or has ended."""
        return self.sent == self.max_orders and all(
            self.states.get(cid) in DONE for cid in self.expected
        )

    async def wait_until(self, done: Callable[[], bool]) -> None:
        """Wait until ``done()`` holds (checked after every event handled)."""
        while not done():
            self.changed = trio.Event()
            await self.changed.wait()


# --8<-- [end:strategy]


# --8<-- [start:venues]
async def open_venues(stack: AsyncExitStack) -> list[tuple[BinanceAdapter, VenueOrderClient]]:
    """Two seeded venues, each with a market data adapter and an order client."""
    venues: list[tuple[BinanceAdapter, VenueOrderClient]] = []
    for seed, name in enumerate(VENUES, start=1):
        venue = await stack.enter_async_context(
            open_venue(VenueConfig(seed=seed, market=MarketConfig(rate=100.0)))
        )
        orders = BinanceOrderConfig(
            api_key=DEFAULT_API_KEY,
            api_secret=DEFAULT_API_SECRET,
            rest_url=venue.http_url,
            ws_url=venue.ws_url,
            provider=name,  # orders naming provider=name go to this venue
        )
        client = await stack.enter_async_context(open_binance_orders(orders))
        adapter = BinanceAdapter(
            ["BTC-USDT"], ws_url=venue.ws_url, rest_url=venue.http_url, provider=name
        )
        venues.append((adapter, client))
    return venues


# --8<-- [end:venues]


# --8<-- [start:main]
async def main(seconds: float) -> None:
    taker = SpreadTaker()
    rule = MergeRule(
        name="btc-top",
        instrument="BTC-USDT",
        kind=Kind.TICKER,
        providers=VENUES,
        window=0.05,
        max_count=8,
    )
    async with AsyncExitStack() as stack:
        venues = await open_venues(stack)
        transport = await stack.enter_async_context(open_network_transport())
        pipe = await stack.enter_async_context(
            open_pipeline(
                PipelineConfig(debug=True, merges=[rule]),
                order_clients=[client for _, client in venues],
            )
        )
        await pipe.subscribe("taker", taker, kinds=[])
        await pipe.control.subscribe_merged("taker", "BTC-USDT")
        with trio.move_on_after(seconds):
            async with trio.open_nursery() as nursery:
                for adapter, _ in venues:
                    await nursery.start(serve_provider, pipe, adapter, transport)
                # The switch is off: the first order is refused in the runtime.
                await taker.wait_until(lambda: bool(taker.refused))
                reply = await pipe.control.set_trading_switch("taker", True)
                print(f"operator: trading switch on for taker ({reply.result.ok})")
                await taker.wait_until(
                    lambda: (
                        taker.sent == taker.max_orders
                        and len(taker.states) == taker.sent - 1
                        and all(state in DONE for state in taker.states.values())
                    )
                )
                nursery.cancel_scope.cancel(reason="every order has ended")
        await pipe.control.set_trading_switch("taker", False)
        await pipe.wait_idle()
        orders = pipe.statistics().orders
    print(
        f"orders: {taker.sent} decided, {len(taker.refused)} refused, "
        f"{orders.submitted} submitted, {orders.venue_orders} at venues, "
        f"{orders.exec_reports} execution reports delivered"
    )


# --8<-- [end:main]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="longest run")
    trio.run(main, parser.parse_args().seconds)
