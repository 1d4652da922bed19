"""Fault knobs: REST 5xx, delays and hangs; WebSocket drops, now or every N messages.

Server tests over real localhost sockets, under trio's autojump clock: the venue's
delays and hangs, and the clients' timeouts, pass in virtual time.
"""

from __future__ import annotations

import httpx
import orjson
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, WebSocketConnection
from venue_client import open_ws, quiet_config, signed

from meltica_trio.venue import FaultConfig, FaultPhase, VenueConfig, open_venue

ORDER = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01000",
    "price": "100.00",
}


async def drain(ws: WebSocketConnection) -> None:
    while True:
        await ws.get_message()


async def statuses(seed: int, rate: float, n: int) -> list[int]:
    config = quiet_config(seed=seed, faults=FaultConfig(rest_error_rate=rate))
    async with open_venue(config) as venue, httpx.AsyncClient(base_url=venue.http_url) as client:
        return [(await client.get("/api/v3/ping")).status_code for _ in range(n)]


async def test_error_rate_fails_a_seeded_share_of_calls_with_binance_5xx(
    autojump_clock: trio.testing.MockClock,
) -> None:
    first = await statuses(seed=4, rate=0.5, n=40)
    assert set(first) == {200, 503}
    assert 8 <= first.count(503) <= 32
    assert await statuses(seed=4, rate=0.5, n=40) == first  # same seed, same failures
    assert set(await statuses(seed=4, rate=1.0, n=5)) == {503}
    async with open_venue(quiet_config(faults=FaultConfig(rest_error_rate=1.0))) as venue:
        async with httpx.AsyncClient(base_url=venue.http_url) as client:
            response = await client.get("/api/v3/time")
        assert response.json() == {
            "code": -1001,
            "msg": "Internal error; unable to process your request. Please try again.",
        }
        assert venue.statistics().faults.rest_errors == 1


async def test_error_before_has_no_effect_and_error_after_loses_only_the_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        engine = venue.engine("BTCUSDT")
        venue.faults.update(rest_error_rate=1.0, rest_paths=frozenset({"/api/v3/order"}))
        before = await signed(client, "POST", "/api/v3/order", ORDER)
        assert before.status_code == 503
        assert engine.open_orders() == []
        assert (await client.get("/api/v3/time")).status_code == 200  # path not covered
        venue.faults.update(rest_phase=FaultPhase.AFTER)
        after = await signed(client, "POST", "/api/v3/order", {**ORDER, "newClientOrderId": "x"})
        assert after.status_code == 503
        assert [o.client_order_id for o in engine.open_orders()] == ["x"]
        venue.faults.reset()
        assert (await signed(client, "POST", "/api/v3/order", ORDER)).status_code == 200


async def test_either_phase_strikes_some_calls_before_their_effect_and_some_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    faults = FaultConfig(
        rest_error_rate=1.0,
        rest_phase=FaultPhase.EITHER,
        rest_paths=frozenset({"/api/v3/order"}),
    )
    async with (
        open_venue(quiet_config(faults=faults)) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        for i in range(20):
            answer = await signed(
                client, "POST", "/api/v3/order", {**ORDER, "newClientOrderId": f"x{i}"}
            )
            assert answer.status_code == 503
        placed = len(venue.engine("BTCUSDT").open_orders())
        assert 0 < placed < 20
        assert venue.statistics().faults.rest_after == placed
        assert venue.exchange.requests == {("POST", "/api/v3/order", 503): 20}


async def test_delay_slows_every_rest_call(autojump_clock: trio.testing.MockClock) -> None:
    async with (
        open_venue(quiet_config(faults=FaultConfig(rest_delay=2.5))) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        start = trio.current_time()
        response = await client.get("/api/v3/ping")
        assert response.status_code == 200
        assert trio.current_time() - start >= 2.5


async def test_hang_outlasts_the_client_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async with open_venue(quiet_config(faults=FaultConfig(rest_hang_rate=1.0))) as venue:
        async with httpx.AsyncClient(base_url=venue.http_url, timeout=3.0) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get("/api/v3/ping")
            venue.faults.reset()
            assert (await client.get("/api/v3/ping")).status_code == 200
        assert venue.statistics().faults.rest_hangs == 1


async def test_socket_drops_after_every_n_messages(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = VenueConfig(seed=2, faults=FaultConfig(ws_drop_every=5))
    async with open_venue(config) as venue:
        for _ in range(2):  # a reconnect gets a fresh count
            async with open_ws(venue, "/stream?streams=btcusdt@depth@100ms") as ws:
                received = [orjson.loads(await ws.get_message()) for _ in range(5)]
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.get_message()
            assert len(received) == 5
            assert closed.value.reason is not None
            assert closed.value.reason.code == 1011
        assert venue.statistics().faults.ws_drops == 2


async def test_drop_connections_closes_every_open_socket_now(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_venue(VenueConfig(seed=2)) as venue:
        url = "/stream?streams=btcusdt@bookTicker"
        async with open_ws(venue, url) as one, open_ws(venue, url) as two:
            await one.get_message()
            await two.get_message()
            venue.faults.drop_connections()
            for ws in (one, two):
                with pytest.raises(ConnectionClosed):
                    await drain(ws)
        assert venue.statistics().faults.ws_drops == 2
        async with open_ws(venue, url) as three:  # new connections are unaffected
            await three.get_message()
