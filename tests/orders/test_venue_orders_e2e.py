"""End to end over real localhost sockets: gateway -> Binance client -> simulated venue."""

from __future__ import annotations

from decimal import Decimal

import trio
from orders_fakes import Sink

from meltica_trio import venue as venue_api
from meltica_trio.bus import CancelOrder, ControlBus, SubmitOrder
from meltica_trio.events import OrderState
from meltica_trio.orders import BinanceOrderConfig, OrderGateway, open_binance_orders

ACK, PARTIAL, FILLED = OrderState.ACK, OrderState.PARTIAL, OrderState.FILLED
CANCELLED = OrderState.CANCELLED
ALICE = venue_api.ApiCredentials("alice-key", "alice-secret", "alice")
DEMO = venue_api.ApiCredentials(venue_api.DEFAULT_API_KEY, venue_api.DEFAULT_API_SECRET, "demo")


def order(
    consumer_id: str, client_order_id: str, provider: str, side: str, quantity: str, price: str
) -> SubmitOrder:
    return SubmitOrder(
        consumer_id=consumer_id,
        client_order_id=client_order_id,
        provider=provider,
        instrument="BTC-USDT",
        side=side,
        quantity=quantity,
        price=price,
        decision_id=f"d-{client_order_id}",
        trace_id=f"t-{client_order_id}",
    )


def client_config(venue: object, creds: object, provider: str) -> BinanceOrderConfig:
    return BinanceOrderConfig(
        api_key=creds.api_key,  # type: ignore[attr-defined]
        api_secret=creds.secret,  # type: ignore[attr-defined]
        rest_url=venue.http_url,  # type: ignore[attr-defined]
        ws_url=venue.ws_url,  # type: ignore[attr-defined]
        provider=provider,
        recv_window_ms=1000,
        request_timeout=2.0,
        reconnect_base=0.05,
    )


async def test_orders_fill_and_cancel_through_the_simulated_venue() -> None:
    sink = Sink(expected=2)
    config = venue_api.VenueConfig(market=None, credentials=(DEMO, ALICE))
    async with (
        venue_api.open_venue(config) as venue,
        open_binance_orders(client_config(venue, DEMO, "binance")) as demo,
        open_binance_orders(client_config(venue, ALICE, "alice")) as alice,
    ):
        gateway = OrderGateway([demo, alice], sink)
        bus = ControlBus(lambda *_: None, lambda: 0)
        gateway.register(bus)
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.serve)
            with trio.fail_after(20):
                assert bus.handle(order("c1", "b-1", "binance", "buy", "0.01", "60000")).result.ok
                await sink.wait_for(lambda: sink.states("b-1") == [ACK])
                assert bus.handle(order("c2", "s-1", "alice", "sell", "0.004", "60000")).result.ok
                await sink.wait_for(lambda: PARTIAL in sink.states("b-1"))
                assert bus.handle(CancelOrder(consumer_id="c1", client_order_id="b-1")).result.ok
                await sink.done.wait()
            nursery.cancel_scope.cancel()
    assert sink.states("b-1") == [ACK, PARTIAL, CANCELLED]
    assert sink.states("s-1") == [ACK, FILLED]
    final = sink.reports[-1][1] if sink.reports[-1][1].client_order_id == "b-1" else None
    cancelled = final or next(r for _, r, _, _ in sink.reports if r.state is CANCELLED)
    assert Decimal(cancelled.filled) == Decimal("0.004")
    assert Decimal(cancelled.remaining) == Decimal("0.006")
    for consumer_id, report, decision_id, trace_id in sink.reports:
        assert consumer_id == {"b-1": "c1", "s-1": "c2"}[report.client_order_id]
        assert (decision_id, trace_id) == (
            f"d-{report.client_order_id}",
            f"t-{report.client_order_id}",
        )
    assert len({r.exec_id for _, r, _, _ in sink.reports}) == len(sink.reports)


async def test_lost_answers_from_the_venue_create_no_second_order() -> None:
    count = 6
    sink = Sink(expected=count)
    faults = venue_api.FaultConfig(
        rest_error_rate=0.5,
        rest_phase=venue_api.FaultPhase.AFTER,
        rest_paths=frozenset({"/api/v3/order"}),
    )
    config = venue_api.VenueConfig(market=None, credentials=(DEMO,), faults=faults, seed=3)
    async with (
        venue_api.open_venue(config) as venue,
        open_binance_orders(client_config(venue, DEMO, "binance")) as demo,
    ):
        gateway = OrderGateway([demo], sink)
        bus = ControlBus(lambda *_: None, lambda: 0)
        gateway.register(bus)
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.serve)
            with trio.fail_after(40):
                for i in range(count):
                    assert bus.handle(
                        order("c1", f"o-{i}", "binance", "buy", "0.001", "50000")
                    ).result.ok
                await sink.wait_for(lambda: all(sink.states(f"o-{i}") for i in range(count)))
                resting = venue.engine("BTCUSDT").open_orders(owner="demo")
                assert len(resting) == count
                assert len({o.client_order_id for o in resting}) == count
                for i in range(count):
                    assert bus.handle(
                        CancelOrder(consumer_id="c1", client_order_id=f"o-{i}")
                    ).result.ok
                await sink.done.wait()
            nursery.cancel_scope.cancel()
    for i in range(count):
        assert sink.states(f"o-{i}") == [ACK, CANCELLED]
    stats = gateway.statistics()
    assert stats.venue_orders == count
    assert stats.reconciled > 0
    assert venue.statistics().faults.rest_errors > 0
