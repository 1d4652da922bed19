"""WebSocket streams of the venue: depth diffs, trades, tickers and the user data stream.

Server tests over real localhost sockets (trio-websocket and httpx clients). The venue
runs under trio's autojump clock where the market's pacing matters, so its seconds of
flow pass instantly.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, ConnectionRejected, WebSocketConnection
from venue_client import ALICE, BOB, open_ws, quiet_config, signed

from meltica_trio.venue import Venue, VenueConfig, open_venue

D = Decimal


async def wait_subscribed(venue: Venue, stream: str) -> None:
    """The server subscribes just after the handshake; wait (bounded) until it has."""
    with trio.fail_after(5):
        await venue.exchange.hub.wait_subscribed(stream)


async def next_data(ws: WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(5):
        frame: dict[str, Any] = orjson.loads(await ws.get_message())
    data: dict[str, Any] = frame["data"] if "stream" in frame else frame
    return data


class LocalBook:
    """The documented local order book: a snapshot, then absolute-size diffs."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.sides: dict[str, dict[Decimal, Decimal]] = {
            "b": {D(p): D(q) for p, q in snapshot["bids"]},
            "a": {D(p): D(q) for p, q in snapshot["asks"]},
        }

    def apply(self, diff: dict[str, Any]) -> None:
        for key in ("b", "a"):
            for p, q in diff[key]:
                if D(q) == 0:
                    self.sides[key].pop(D(p), None)
                else:
                    self.sides[key][D(p)] = D(q)

    def levels(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        return (
            sorted(self.sides["b"].items(), reverse=True),
            sorted(self.sides["a"].items()),
        )


async def test_local_book_from_snapshot_and_diffs_reproduces_the_venue_book(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = VenueConfig(seed=5)
    async with (
        open_venue(config) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
        open_ws(venue, "/stream?streams=btcusdt@depth@100ms") as ws,
    ):
        buffered = [await next_data(ws) for _ in range(3)]
        params: dict[str, str | int] = {"symbol": "BTCUSDT", "limit": 5000}
        snapshot = (await client.get("/api/v3/depth", params=params)).json()
        book, last = LocalBook(snapshot), snapshot["lastUpdateId"]
        pending = [d for d in buffered if d["u"] > last]
        prev_u, compared, engine = None, 0, venue.engine("BTCUSDT")
        for _ in range(300):
            diff = pending.pop(0) if pending else await next_data(ws)
            if diff["u"] <= last:
                continue
            if prev_u is None:
                assert diff["U"] <= last + 1 <= diff["u"]
            else:
                assert diff["U"] == prev_u + 1
            book.apply(diff)
            prev_u = diff["u"]
            if prev_u == engine.update_id:  # no change since this diff: books must agree
                assert book.levels() == engine.depth()
                compared += 1
                if compared == 20:
                    break
        assert compared == 20


async def test_every_connection_sees_the_same_contiguous_diffs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_venue(VenueConfig(seed=9)) as venue:
        url = "/stream?streams=ethusdt@depth@100ms/ethusdt@depth"
        async with open_ws(venue, url) as one, open_ws(venue, url) as two:
            await wait_subscribed(venue, "ethusdt@depth")
            seen: dict[str, list[tuple[int, int]]] = {"one": [], "two": []}
            for name, ws in (("one", one), ("two", two)):
                while len(seen[name]) < 30:
                    frame = orjson.loads(await ws.get_message())
                    if frame["stream"] == "ethusdt@depth@100ms":
                        seen[name].append((frame["data"]["U"], frame["data"]["u"]))
            for pairs in seen.values():
                for (_, prev_u), (first, _) in itertools.pairwise(pairs):
                    assert first == prev_u + 1
            common = set(seen["one"]) & set(seen["two"])
            assert len(common) >= 25


async def test_trades_and_book_ticker_follow_a_taker_order() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        url = "/stream?streams=btcusdt@aggTrade/btcusdt@bookTicker"
        async with open_ws(venue, url) as ws:
            await wait_subscribed(venue, "btcusdt@aggTrade")
            for price in ("100.00", "100.00", "101.00"):
                ask = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT"}
                ask |= {"timeInForce": "GTC", "quantity": "0.01000", "price": price}
                await signed(client, "POST", "/api/v3/order", ask, ALICE)
            take = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.02500"}
            await signed(client, "POST", "/api/v3/order", take, BOB)
            messages = [await next_data(ws) for _ in range(5)]
        tickers = [m for m in messages if "e" not in m]
        trades = [m for m in messages if m.get("e") == "aggTrade"]
        assert tickers[0] == {
            "u": 1,
            "s": "BTCUSDT",
            "b": "0.00000000",
            "B": "0.00000000",
            "a": "100.00000000",
            "A": "0.01000000",
        }
        assert tickers[-1]["a"] == "101.00000000"
        assert tickers[-1]["A"] == "0.00500000"
        # Two makers at 100 aggregate into one trade; 101 is another.
        assert [(t["p"], t["q"], t["f"], t["l"], t["m"]) for t in trades] == [
            ("100.00000000", "0.02000000", 1, 2, False),
            ("101.00000000", "0.00500000", 3, 3, False),
        ]


async def open_user_stream(client: httpx.AsyncClient, api_key: str) -> str:
    response = await client.post("/api/v3/userDataStream", headers={"X-MBX-APIKEY": api_key})
    assert response.status_code == 200
    key: str = response.json()["listenKey"]
    return key


async def alice_rests_bob_takes_alice_cancels(client: httpx.AsyncClient) -> None:
    """Alice sells 0.02 at 100; Bob buys it in two; Alice rests 0.01 at 105, cancels it."""
    sell = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC"}
    first = sell | {"quantity": "0.02000", "price": "100.00", "newClientOrderId": "a-1"}
    await signed(client, "POST", "/api/v3/order", first, ALICE)
    take = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01000"}
    await signed(client, "POST", "/api/v3/order", take, BOB)
    await signed(client, "POST", "/api/v3/order", take, BOB)
    second = sell | {"quantity": "0.01000", "price": "105.00", "newClientOrderId": "a-2"}
    await signed(client, "POST", "/api/v3/order", second, ALICE)
    cancel = {"symbol": "BTCUSDT", "origClientOrderId": "a-2", "newClientOrderId": "c-2"}
    await signed(client, "DELETE", "/api/v3/order", cancel, ALICE)


async def test_user_data_stream_reports_new_partial_fill_fill_and_cancel() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        key = await open_user_stream(client, ALICE.api_key)
        async with open_ws(venue, f"/ws/{key}") as ws:
            await wait_subscribed(venue, key)
            await alice_rests_bob_takes_alice_cancels(client)
            reports = [await next_data(ws) for _ in range(5)]
        assert {r["e"] for r in reports} == {"executionReport"}
        assert [(r["x"], r["X"]) for r in reports] == [
            ("NEW", "NEW"),
            ("TRADE", "PARTIALLY_FILLED"),
            ("TRADE", "FILLED"),
            ("NEW", "NEW"),
            ("CANCELED", "CANCELED"),
        ]
        new, partial, filled, _, canceled = reports
        assert (new["c"], new["S"], new["o"], new["q"], new["p"]) == (
            "a-1",
            "SELL",
            "LIMIT",
            "0.02000000",
            "100.00000000",
        )
        assert (partial["l"], partial["z"], partial["L"], partial["m"]) == (
            "0.01000000",
            "0.01000000",
            "100.00000000",
            True,
        )
        assert filled["z"] == "0.02000000"
        assert filled["t"] > partial["t"] > 0
        assert partial["i"] == filled["i"] == new["i"]
        assert (canceled["c"], canceled["C"]) == ("c-2", "a-2")
        exec_ids = [r["I"] for r in reports]
        assert exec_ids == sorted(set(exec_ids))


async def test_listen_key_lifecycle_keepalive_and_close_ends_the_stream() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        key = await open_user_stream(client, ALICE.api_key)
        assert await open_user_stream(client, ALICE.api_key) == key
        assert await open_user_stream(client, BOB.api_key) != key
        headers = {"X-MBX-APIKEY": ALICE.api_key}
        put = await client.put(f"/api/v3/userDataStream?listenKey={key}", headers=headers)
        assert (put.status_code, put.json()) == (200, {})
        async with open_ws(venue, f"/stream?streams={key}") as ws:
            await wait_subscribed(venue, key)
            await client.delete(f"/api/v3/userDataStream?listenKey={key}", headers=headers)
            with pytest.raises(ConnectionClosed), trio.fail_after(5):
                await ws.get_message()
        again = await client.put(f"/api/v3/userDataStream?listenKey={key}", headers=headers)
        assert again.status_code == 400
        assert again.json() == {"code": -1125, "msg": "This listenKey does not exist."}


async def test_unknown_listen_key_is_refused_at_handshake() -> None:
    async with open_venue(quiet_config()) as venue:
        rejected = pytest.RaisesExc(ConnectionRejected, check=lambda e: e.status_code == 403)
        with pytest.RaisesGroup(rejected, allow_unwrapped=True, flatten_subgroups=True):
            async with open_ws(venue, "/ws/not-a-key"):
                pass  # pragma: no cover


async def test_raw_stream_sends_payload_without_wrapper() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        async with open_ws(venue, "/ws/btcusdt@bookTicker") as ws:
            await wait_subscribed(venue, "btcusdt@bookTicker")
            bid = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
            await signed(
                client, "POST", "/api/v3/order", bid | {"quantity": "0.01000", "price": "99.00"}
            )
            with trio.fail_after(5):
                frame = orjson.loads(await ws.get_message())
        assert frame["s"] == "BTCUSDT"
        assert frame["b"] == "99.00000000"
