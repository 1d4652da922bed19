"""The Binance order client: documented signing, request shapes, answers and the stream."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import httpx
import orjson
import pytest
import trio
import trio.testing
from binance_fakes import API_KEY, NOW_MS, SECRET, RestVenue, UserStream
from orders_fakes import Sink

from meltica_trio._errors import DecodeError
from meltica_trio.bus import ControlBus, SubmitOrder
from meltica_trio.events import OrderState, Side
from meltica_trio.orders import (
    BinanceOrderClient,
    BinanceOrderConfig,
    DuplicateOrderError,
    OrderGateway,
    StreamGap,
    StreamItem,
    UnknownOrderError,
    VenueOrder,
    VenueRejectedError,
    VenueUnavailableError,
    VenueUpdate,
    open_binance_orders,
)
from meltica_trio.orders._binance_http import TransportPool, environment_proxy
from meltica_trio.orders._binance_wire import (
    ListenKeyExpired,
    parse_user_event,
    sign,
    signed_query,
)

DOC_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"

LIMIT = VenueOrder(
    venue_client_order_id="mt-abc",
    instrument="BTC-USDT",
    side=Side.BUY,
    quantity="1.5",
    price="100.25",
)


def config(**kw: object) -> BinanceOrderConfig:
    return BinanceOrderConfig(
        api_key=API_KEY,
        api_secret=SECRET,
        rest_url="http://127.0.0.1:9",
        ws_url="ws://127.0.0.1:9",
        **kw,
    )  # type: ignore[arg-type]


@asynccontextmanager
async def client_for(
    venue: RestVenue, stream: UserStream | None = None, **kw: object
) -> AsyncIterator[BinanceOrderClient]:
    async with open_binance_orders(
        config(**kw),
        transport=venue.transport(),
        connect_ws=(stream or UserStream()).connect,
        wall_clock_ms=lambda: NOW_MS,
    ) as client:
        yield client


# -- signing ------------------------------------------------------------------------


def test_the_signature_matches_binances_documented_example() -> None:
    assert sign(SECRET, DOC_QUERY) == DOC_SIGNATURE


def test_a_signed_query_is_the_documented_query_plus_its_signature() -> None:
    params = [
        ("symbol", "LTCBTC"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "1"),
        ("price", "0.1"),
    ]
    query = signed_query(params, secret=SECRET, timestamp_ms=1499827319559, recv_window_ms=5000)
    assert query == f"{DOC_QUERY}&signature={DOC_SIGNATURE}"


def test_the_secret_never_shows_in_a_repr() -> None:
    assert SECRET not in repr(config())
    assert API_KEY not in repr(config())


# -- request shapes -------------------------------------------------------------------


async def test_a_limit_order_is_a_signed_post_with_every_documented_parameter() -> None:
    venue = RestVenue()
    async with client_for(venue) as client:
        update = await client.submit(LIMIT)
    [seen] = venue.seen
    assert (seen.method, seen.path, seen.api_key, seen.signature_ok) == (
        "POST",
        "/api/v3/order",
        API_KEY,
        True,
    )
    assert seen.params[:-1] == (
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "1.5"),
        ("price", "100.25"),
        ("newClientOrderId", "mt-abc"),
        ("newOrderRespType", "ACK"),
        ("recvWindow", "5000"),
        ("timestamp", str(NOW_MS)),
    )
    assert seen.params[-1][0] == "signature"
    assert update == VenueUpdate(
        venue_client_order_id="mt-abc",
        exec_id="1000:rest:ACK",
        state=OrderState.ACK,
        filled="0",
        venue_order_id="1000",
    )


async def test_a_market_order_has_no_price_and_no_time_in_force() -> None:
    venue = RestVenue(fill=True)
    market = VenueOrder(
        venue_client_order_id="m1", instrument="ETH-BTC", side=Side.SELL, quantity="2"
    )
    async with client_for(venue, recv_window_ms=2500) as client:
        update = await client.submit(market)
        assert client.settle_time == 2.5
    names = [name for name, _ in venue.seen[0].params]
    assert names == [
        "symbol",
        "side",
        "type",
        "quantity",
        "newClientOrderId",
        "newOrderRespType",
        "recvWindow",
        "timestamp",
        "signature",
    ]
    assert dict(venue.seen[0].params)["type"] == "MARKET"
    assert dict(venue.seen[0].params)["recvWindow"] == "2500"
    # The order filled at once, but an ACK answer only acknowledges: fills come on the
    # stream, one report each, with their own price and size.
    assert (update.state, update.filled, update.last_fill_price) == (OrderState.ACK, "0", None)


async def test_query_and_cancel_name_the_order_by_its_client_order_id() -> None:
    venue = RestVenue()
    async with client_for(venue) as client:
        await client.submit(LIMIT)
        queried = await client.query(LIMIT.ref)
        cancelled = await client.cancel(LIMIT.ref)
    get, delete = venue.seen[1], venue.seen[2]
    for seen, method in ((get, "GET"), (delete, "DELETE")):
        assert (seen.method, seen.path, seen.api_key, seen.signature_ok) == (
            method,
            "/api/v3/order",
            API_KEY,
            True,
        )
        assert seen.params[:2] == (("symbol", "BTCUSDT"), ("origClientOrderId", "mt-abc"))
    assert queried.state is OrderState.ACK
    # The cancel answer carries the cancel's own id; the order's is origClientOrderId.
    assert (cancelled.venue_client_order_id, cancelled.state) == ("mt-abc", OrderState.CANCELLED)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (503, b'{"code": -1000, "msg": "Unknown error"}', VenueUnavailableError),
        (500, b"<html>oops</html>", VenueUnavailableError),
        (429, b'{"code": -1003, "msg": "Too many requests"}', VenueUnavailableError),
        (400, b'{"code": -1007, "msg": "Timeout waiting for response"}', VenueUnavailableError),
        (400, b'{"code": -2013, "msg": "Order does not exist."}', UnknownOrderError),
        (400, b'{"code": -2011, "msg": "Unknown order sent."}', UnknownOrderError),
        (400, b'{"code": -2010, "msg": "Duplicate order sent."}', DuplicateOrderError),
        (400, b'{"code": -2010, "msg": "Account has insufficient balance."}', VenueRejectedError),
        (400, b'{"code": -1013, "msg": "Filter failure: LOT_SIZE"}', VenueRejectedError),
        (200, b"not json", VenueUnavailableError),
        (200, b'{"orderId": "x"}', VenueUnavailableError),
    ],
)
async def test_answers_translate_to_the_error_tree(
    status: int, body: bytes, error: type[Exception]
) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    async with open_binance_orders(config(), transport=transport) as client:
        with pytest.raises(error) as info:
            await client.query(LIMIT.ref)
    assert type(info.value) is error
    assert info.value.provider == "binance"  # type: ignore[attr-defined]


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.ConnectError])
async def test_timeouts_and_transport_errors_leave_the_outcome_unknown(
    failure: type[httpx.TransportError],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure("boom", request=request)

    async with open_binance_orders(config(), transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(VenueUnavailableError) as info:
            await client.submit(LIMIT)
    assert isinstance(info.value.__cause__, failure)


async def test_an_unreadable_acknowledgement_leaves_the_outcome_unknown() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"orderId": "x"}))
    async with open_binance_orders(config(), transport=transport) as client:
        with pytest.raises(VenueUnavailableError, match="unreadable order answer"):
            await client.submit(LIMIT)


# -- HTTP: a transport per concurrent call ------------------------------------------------


@attrs.define(eq=False)
class Transports:
    """Makes MockTransports that hold every request until ``release`` is set."""

    made: list[httpx.MockTransport] = attrs.field(factory=list)
    closed: int = 0
    seen: list[httpx.Request] = attrs.field(factory=list)
    release: trio.Event = attrs.field(factory=trio.Event)

    def make(self) -> httpx.MockTransport:
        transports = self

        class Counted(httpx.MockTransport):
            async def aclose(self) -> None:
                transports.closed += 1

        transport = Counted(self.handle)
        self.made.append(transport)
        return transport

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        await self.release.wait()
        return httpx.Response(200, json={"path": request.url.path})


async def test_concurrent_calls_get_a_transport_each_and_later_calls_reuse_them() -> None:
    transports = Transports()
    pool = TransportPool("http://venue.test/", 1.5, make=transports.make)
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(functools.partial(pool.request, "GET", "/a", headers={}))
        await trio.testing.wait_all_tasks_blocked()
        assert len(transports.made) == 3  # none shared while its call runs
        transports.release.set()
    answer = await pool.request("POST", "/b?x=1", headers={"X-MBX-APIKEY": "k"})
    assert answer.json() == {"path": "/b"}
    assert len(transports.made) == pool.transports == 3  # the next call reused one
    last = transports.seen[-1]
    assert (last.method, str(last.url), last.headers["X-MBX-APIKEY"]) == (
        "POST",
        "http://venue.test/b?x=1",
        "k",
    )
    assert last.headers["User-Agent"] == f"python-httpx/{httpx.__version__}"
    timeouts = last.extensions["timeout"]
    assert timeouts == {"connect": 1.5, "read": 1.5, "write": 1.5, "pool": 1.5}
    await pool.aclose()
    assert transports.closed == 3


async def test_an_injected_transport_serves_every_call_and_is_closed_once() -> None:
    transports = Transports()
    transports.release.set()
    injected = transports.make()
    pool = TransportPool.for_url("http://venue.test", 2.0, injected)
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(functools.partial(pool.request, "GET", "/a", headers={}))
    assert (len(transports.made), len(transports.seen), pool.transports) == (1, 3, 1)
    await pool.aclose()
    assert transports.closed == 1


def test_the_environments_proxy_is_used_unless_no_proxy_names_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("https_proxy", "http_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert environment_proxy("https://api.binance.com") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    assert environment_proxy("https://api.binance.com") == "http://proxy.test:3128"
    assert environment_proxy("http://127.0.0.1:9") is None  # no proxy for plain http
    monkeypatch.setenv("ALL_PROXY", "http://other.test:8080")
    assert environment_proxy("http://127.0.0.1:9") == "http://other.test:8080"
    monkeypatch.setenv("NO_PROXY", "api.binance.com,127.0.0.1")
    assert environment_proxy("https://api.binance.com") is None
    assert environment_proxy("http://127.0.0.1:9") is None


# -- the user data stream ---------------------------------------------------------------

REPORT = {
    "e": "executionReport",
    "E": 1499405658658,
    "s": "ETHBTC",
    "c": "mt-abc",
    "S": "BUY",
    "o": "LIMIT",
    "f": "GTC",
    "q": "1.00000000",
    "p": "0.10264410",
    "C": "",
    "x": "NEW",
    "X": "NEW",
    "r": "NONE",
    "i": 4293153,
    "l": "0.00000000",
    "z": "0.00000000",
    "L": "0.00000000",
    "T": 1499405658657,
    "t": -1,
}
TRADE = REPORT | {
    "E": 1499405658700,
    "x": "TRADE",
    "X": "PARTIALLY_FILLED",
    "l": "0.25000000",
    "z": "0.25000000",
    "L": "0.10264410",
    "t": 77,
}
CANCEL = REPORT | {
    "E": 1499405658800,
    "x": "CANCELED",
    "X": "CANCELED",
    "c": "cxl-1",
    "C": "mt-abc",
}


def frame(doc: dict[str, object]) -> str:
    return orjson.dumps(doc).decode()


def test_execution_reports_become_updates_with_a_unique_id_per_event() -> None:
    new, trade, cancel = (parse_user_event(frame(d)) for d in (REPORT, TRADE, CANCEL))
    assert new == VenueUpdate(
        venue_client_order_id="mt-abc",
        exec_id="4293153:NEW:1499405658658",
        state=OrderState.ACK,
        filled="0.00000000",
        venue_order_id="4293153",
    )
    assert isinstance(trade, VenueUpdate)
    assert (trade.exec_id, trade.state, trade.filled) == (
        "4293153:TRADE:77",
        OrderState.PARTIAL,
        "0.25000000",
    )
    assert (trade.last_fill_price, trade.last_fill_size) == ("0.10264410", "0.25000000")
    assert isinstance(cancel, VenueUpdate)
    assert (cancel.venue_client_order_id, cancel.state) == ("mt-abc", OrderState.CANCELLED)
    rejected = parse_user_event(
        frame(REPORT | {"x": "REJECTED", "X": "REJECTED", "r": "INSUFFICIENT_BALANCES"})
    )
    assert isinstance(rejected, VenueUpdate)
    assert (rejected.state, rejected.reason) == (OrderState.REJECTED, "INSUFFICIENT_BALANCES")


def test_other_user_events_are_skipped_and_an_expired_key_is_noticed() -> None:
    assert parse_user_event(frame({"subscriptionId": 0, "event": REPORT})) == parse_user_event(
        frame(REPORT)
    )
    assert parse_user_event(frame({"e": "outboundAccountPosition", "E": 1, "B": []})) is None
    assert parse_user_event(frame({"e": "listenKeyExpired", "E": 1})) == ListenKeyExpired()
    with pytest.raises(DecodeError):
        parse_user_event("{")
    with pytest.raises(DecodeError, match="z"):
        parse_user_event(frame({k: v for k, v in REPORT.items() if k != "z"}))
    with pytest.raises(DecodeError, match="status"):
        parse_user_event(frame(REPORT | {"X": "WEIRD"}))


async def next_items(receive: trio.MemoryReceiveChannel[StreamItem], n: int) -> list[StreamItem]:
    return [await receive.receive() for _ in range(n)]


async def test_the_stream_forwards_updates_reconnects_and_keeps_its_key_alive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue, stream = RestVenue(), UserStream()
    send, receive = trio.open_memory_channel[StreamItem](16)
    async with client_for(venue, stream) as client, trio.open_nursery() as nursery:
        await nursery.start(client.serve_updates, send)
        stream.script(frame(REPORT), "not json", frame({"e": "balanceUpdate"}), frame(TRADE))
        gap, new, trade = await next_items(receive, 3)
        assert isinstance(gap, StreamGap)
        assert isinstance(new, VenueUpdate)
        assert new.state is OrderState.ACK
        assert isinstance(trade, VenueUpdate)
        assert trade.state is OrderState.PARTIAL
        assert stream.urls == ["ws://127.0.0.1:9/ws/key1"]

        await trio.sleep(client.config.keepalive_interval + 1)
        puts = [s for s in venue.seen if s.method == "PUT"]
        assert [(s.path, s.params, s.api_key) for s in puts] == [
            ("/api/v3/userDataStream", (("listenKey", "key1"),), API_KEY)
        ]

        stream.script(None)  # the venue drops the connection
        [gap] = await next_items(receive, 1)
        assert isinstance(gap, StreamGap)
        stream.script(frame({"e": "listenKeyExpired", "E": 2}))
        [gap] = await next_items(receive, 1)
        assert isinstance(gap, StreamGap)
        assert stream.urls[1:] == ["ws://127.0.0.1:9/ws/key2", "ws://127.0.0.1:9/ws/key3"]
        nursery.cancel_scope.cancel()
    posts = [s for s in venue.seen if s.method == "POST"]
    assert all(s.api_key == API_KEY and s.signature_ok is None for s in posts)


# -- the gateway over the Binance client -------------------------------------------------


def order(client_order_id: str = "o-1") -> SubmitOrder:
    return SubmitOrder(
        consumer_id="c1",
        client_order_id=client_order_id,
        provider="binance",
        instrument="BTC-USDT",
        side="buy",
        quantity="1.5",
        price="100.25",
        decision_id="d1",
        trace_id="t1",
    )


@pytest.fixture
def quiet_stream() -> UserStream:
    return UserStream()


ACK_ONLY = [OrderState.ACK]
ACK_FILLED = [OrderState.ACK, OrderState.FILLED]


@pytest.mark.parametrize(
    ("faults", "calls", "states"),
    [
        # The query finds the order filled; the ACK answer of a resend or a clean
        # submit says only "placed" (its fill would come on the stream, quiet here).
        ({"answer_lost": 1}, ["POST", "GET"], ACK_FILLED),
        ({"lose_posts": 1}, ["POST", "GET", "POST"], ACK_ONLY),
        ({}, ["POST"], ACK_ONLY),
    ],
    ids=["answer-lost", "request-lost", "clean"],
)
async def test_a_timed_out_order_is_queried_by_client_id_before_any_resend(
    autojump_clock: trio.testing.MockClock,
    faults: dict[str, int],
    calls: list[str],
    states: list[OrderState],
    quiet_stream: UserStream,
) -> None:
    venue = RestVenue(fill=True, **faults)
    sink = Sink()
    async with client_for(venue, quiet_stream) as client:
        gateway = OrderGateway([client], sink)
        bus = ControlBus(lambda *_: None, lambda: 0)
        gateway.register(bus)
        async with trio.open_nursery() as nursery:
            await nursery.start(gateway.serve)
            # The stream connects (and its gap is reconciled) before the order exists.
            await trio.testing.wait_all_tasks_blocked()
            assert quiet_stream.connected == 1
            started = trio.current_time()
            assert bus.handle(order()).result.ok
            await sink.wait_for(lambda: [r.state for _, r, _, _ in sink.reports] == states)
            await trio.testing.wait_all_tasks_blocked()  # nothing more is on its way
            nursery.cancel_scope.cancel()
    assert venue.order_calls() == calls
    ids = {
        dict(s.params).get("newClientOrderId") or dict(s.params)["origClientOrderId"]
        for s in venue.seen
        if s.path == "/api/v3/order"
    }
    assert len(ids) == 1  # every retry reused the one client order id
    assert len(venue.orders) == 1
    assert [r.state for _, r, _, _ in sink.reports] == states
    assert {(d, t) for _, _, d, t in sink.reports} == {("d1", "t1")}
    if "GET" in calls:  # the query waited out recvWindow
        assert trio.current_time() - started >= client.settle_time
