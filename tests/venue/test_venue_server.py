"""The venue's REST API over real localhost sockets: market data and the order lifecycle.

Server tests: hypercorn serves on an ephemeral port and httpx talks to it; each
request takes milliseconds of real time.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from venue_client import ALICE, BOB, quiet_config, signed

from meltica_trio.providers.binance import SymbolMap
from meltica_trio.venue import VenueConfig, open_venue

LIMIT_BUY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01000",
    "price": "100.00",
}


async def test_exchange_info_lists_symbols_with_assets_and_filters() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        body = (await client.get("/api/v3/exchangeInfo")).json()
        symbols = {s["symbol"]: s for s in body["symbols"]}
        assert symbols["BTCUSDT"]["baseAsset"] == "BTC"
        assert symbols["BTCUSDT"]["quoteAsset"] == "USDT"
        filters = {f["filterType"] for f in symbols["ETHUSDT"]["filters"]}
        assert filters == {"PRICE_FILTER", "LOT_SIZE"}
        assert SymbolMap.from_exchange_info(body).to_canonical("ETHUSDT") == "ETH-USDT"
        assert (await client.get("/api/v3/time")).json()["serverTime"] > 0


async def test_depth_snapshot_is_the_engine_book_as_strings() -> None:
    async with (
        open_venue(VenueConfig(seed=3)) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        response = await client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5})
        body = response.json()
        engine = venue.engine("BTCUSDT")
        # Nothing ran between the handler and here except the response's delivery.
        assert body["lastUpdateId"] <= engine.update_id
        assert len(body["bids"]) == 5
        assert len(body["asks"]) == 5
        assert all(isinstance(x, str) for level in body["bids"] for x in level)
        best_bid, best_ask = Decimal(body["bids"][0][0]), Decimal(body["asks"][0][0])
        assert best_bid < best_ask
        prices = [Decimal(p) for p, _ in body["bids"]]
        assert prices == sorted(prices, reverse=True)


@pytest.mark.parametrize(
    ("params", "code"),
    [({"symbol": "NOPE"}, -1121), ({"symbol": "BTCUSDT", "limit": 6000}, -1130)],
)
async def test_depth_refuses_bad_parameters(params: dict[str, str | int], code: int) -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        response = await client.get("/api/v3/depth", params=params)
        assert response.status_code == 400
        assert response.json()["code"] == code


async def test_limit_order_can_be_queried_and_canceled_by_either_id() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        placed = await signed(
            client, "POST", "/api/v3/order", {**LIMIT_BUY, "newClientOrderId": "my-1"}
        )
        order = placed.json()
        assert order["clientOrderId"] == "my-1"
        assert order["status"] == "NEW"
        by_id = await signed(
            client, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]}
        )
        assert by_id.json()["origQty"] == "0.01000000"
        assert by_id.json()["isWorking"] is True
        canceled = await signed(
            client,
            "DELETE",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "origClientOrderId": "my-1", "newClientOrderId": "cxl-1"},
        )
        assert canceled.json()["status"] == "CANCELED"
        assert canceled.json()["origClientOrderId"] == "my-1"
        assert canceled.json()["clientOrderId"] == "cxl-1"
        after = await signed(
            client, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "my-1"}
        )
        assert after.json()["status"] == "CANCELED"


async def test_unknown_orders_get_binance_errors() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        query = await signed(client, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": 99})
        assert query.status_code == 400
        assert query.json() == {"code": -2013, "msg": "Order does not exist."}
        cancel = await signed(
            client, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "x"}
        )
        assert cancel.status_code == 400
        assert cancel.json() == {"code": -2011, "msg": "Unknown order sent."}
        neither = await signed(client, "GET", "/api/v3/order", {"symbol": "BTCUSDT"})
        assert neither.json()["code"] == -1102


async def test_duplicate_client_order_id_of_an_open_order_is_refused() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        first = {**LIMIT_BUY, "newClientOrderId": "dup-1"}
        assert (await signed(client, "POST", "/api/v3/order", first)).status_code == 200
        again = await signed(client, "POST", "/api/v3/order", {**first, "price": "101.00"})
        assert again.status_code == 400
        assert again.json() == {"code": -2010, "msg": "Duplicate order sent."}
        assert len(venue.engine("BTCUSDT").open_orders()) == 1
        # Another account may use the same id.
        other = await signed(client, "POST", "/api/v3/order", first, ALICE)
        assert other.status_code == 200


async def test_market_order_fills_against_resting_orders_with_full_response() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        for price in ("100.00", "101.00"):
            ask = {**LIMIT_BUY, "side": "SELL", "price": price, "quantity": "0.01000"}
            await signed(client, "POST", "/api/v3/order", ask, ALICE)
        take = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01500"}
        body = (await signed(client, "POST", "/api/v3/order", take, BOB)).json()
        assert body["status"] == "FILLED"
        assert [(f["price"], f["qty"]) for f in body["fills"]] == [
            ("100.00000000", "0.01000000"),
            ("101.00000000", "0.00500000"),
        ]
        assert body["executedQty"] == "0.01500000"
        assert Decimal(body["cummulativeQuoteQty"]) == Decimal("1.505")
        opens = (await signed(client, "GET", "/api/v3/openOrders", {}, ALICE)).json()
        assert [(o["price"], o["executedQty"]) for o in opens] == [("101.00000000", "0.00500000")]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"symbol": "NOPE"}, -1121),
        ({"side": "SIDEWAYS"}, -1117),
        ({"type": "STOP"}, -1116),
        ({"timeInForce": "DAY"}, -1115),
        ({"price": "100.001"}, -1013),
        ({"quantity": "0.000001"}, -1013),
        ({"quantity": "-1"}, -1100),
        ({"newClientOrderId": "bad id!"}, -1100),
    ],
)
async def test_invalid_orders_are_refused(changes: dict[str, str], code: int) -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        response = await signed(client, "POST", "/api/v3/order", {**LIMIT_BUY, **changes})
        assert response.status_code == 400
        assert response.json()["code"] == code


async def test_ack_and_result_response_types() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        ack = await signed(
            client, "POST", "/api/v3/order", {**LIMIT_BUY, "newOrderRespType": "ACK"}
        )
        assert set(ack.json()) == {
            "symbol",
            "orderId",
            "orderListId",
            "clientOrderId",
            "transactTime",
        }
        result = await signed(
            client, "POST", "/api/v3/order", {**LIMIT_BUY, "newOrderRespType": "RESULT"}
        )
        assert "fills" not in result.json()
        assert result.json()["status"] == "NEW"
