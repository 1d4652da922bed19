"""SIGNED endpoints: HMAC-SHA256 over totalParams, recvWindow, API keys (Binance's errors).

Server tests over real localhost sockets; the venue checks timestamps against its wall
clock, so these run in real time (each request takes milliseconds).
"""

from __future__ import annotations

import httpx
import pytest
from venue_client import ALICE, DEFAULT, FORM, now_ms, quiet_config, signed

from meltica_trio.venue import open_venue, sign, total_params

# The worked example of Binance's "SIGNED Endpoint Examples for POST /api/v3/order".
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PARAMS = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
ORDER = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.001",
    "price": "100.00",
}


def test_signature_matches_binance_documented_examples() -> None:
    assert sign(DOC_SECRET, DOC_PARAMS) == (
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )
    query, body = DOC_PARAMS.split("&quantity")
    payload, signature = total_params(query, "quantity" + body + "&signature=abc")
    assert signature == "abc"
    assert sign(DOC_SECRET, payload) == (
        "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    )


@pytest.mark.parametrize("in_body", [True, False])
async def test_good_signature_is_accepted_in_body_or_query(in_body: bool) -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        response = await signed(client, "POST", "/api/v3/order", ORDER, in_body=in_body)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "NEW"


async def test_mixed_query_and_body_are_signed_as_concatenation() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
        body = f"quantity=0.001&price=100.00&timestamp={now_ms()}"
        body += "&signature=" + sign(DEFAULT.secret, query + body)
        headers = {"X-MBX-APIKEY": DEFAULT.api_key, **FORM}
        response = await client.post(f"/api/v3/order?{query}", content=body, headers=headers)
        assert response.status_code == 200, response.text


async def test_bad_signature_is_refused_with_1022() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        # Alice's key signed with the default secret: the key is valid, the signature not.
        query = f"symbol=BTCUSDT&orderId=1&timestamp={now_ms()}"
        query += "&signature=" + sign(DEFAULT.secret, query)
        response = await client.get(
            f"/api/v3/order?{query}", headers={"X-MBX-APIKEY": ALICE.api_key}
        )
        assert response.status_code == 400
        assert response.json() == {
            "code": -1022,
            "msg": "Signature for this request is not valid.",
        }


@pytest.mark.parametrize(
    ("offset", "window", "msg"),
    [
        (-6_000, None, "Timestamp for this request is outside of the recvWindow."),
        (-2_000, 1_000, "Timestamp for this request is outside of the recvWindow."),
        (5_000, None, "Timestamp for this request was 1000ms ahead of the server's time."),
    ],
)
async def test_stale_or_future_timestamp_is_refused_with_1021(
    offset: int, window: int | None, msg: str
) -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        params: dict[str, object] = {**ORDER, "timestamp": now_ms() + offset}
        if window is not None:
            params["recvWindow"] = window
        response = await signed(client, "POST", "/api/v3/order", params)
        assert response.status_code == 400
        assert response.json() == {"code": -1021, "msg": msg}
        assert venue.engine("BTCUSDT").open_orders() == []


async def test_generous_recv_window_accepts_an_old_timestamp() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        params = {**ORDER, "timestamp": now_ms() - 20_000, "recvWindow": 30_000}
        response = await signed(client, "POST", "/api/v3/order", params)
        assert response.status_code == 200, response.text


async def test_unknown_or_missing_api_key_is_refused_with_401() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        query = f"symbol=BTCUSDT&orderId=1&timestamp={now_ms()}"
        query += "&signature=" + sign("whatever", query)
        unknown = await client.get(f"/api/v3/order?{query}", headers={"X-MBX-APIKEY": "nope"})
        assert unknown.status_code == 401
        assert unknown.json() == {
            "code": -2015,
            "msg": "Invalid API-key, IP, or permissions for action.",
        }
        missing = await client.get(f"/api/v3/order?{query}")
        assert missing.status_code == 401
        assert missing.json()["code"] == -2014


async def test_missing_signature_or_timestamp_is_a_mandatory_parameter_error() -> None:
    async with (
        open_venue(quiet_config()) as venue,
        httpx.AsyncClient(base_url=venue.http_url) as client,
    ):
        headers = {"X-MBX-APIKEY": DEFAULT.api_key}
        no_sig = await client.get(
            f"/api/v3/order?symbol=BTCUSDT&orderId=1&timestamp={now_ms()}", headers=headers
        )
        assert no_sig.json()["code"] == -1102
        assert "'signature'" in no_sig.json()["msg"]
        query = "symbol=BTCUSDT&orderId=1"
        no_ts = await client.get(
            f"/api/v3/order?{query}&signature={sign(DEFAULT.secret, query)}", headers=headers
        )
        assert no_ts.status_code == 400
        assert no_ts.json()["code"] == -1102
        assert "'timestamp'" in no_ts.json()["msg"]
