"""A Binance REST venue behind httpx.MockTransport, and an in-memory user data WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlsplit

import attrs
import httpx
import orjson
import trio
import trio.testing
import trio_websocket

from meltica_trio.orders._binance_wire import sign

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
NOW_MS = 1499827319559


@attrs.frozen
class Seen:
    """One request as the venue saw it."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...]
    api_key: str | None
    signature_ok: bool | None


def _error(status: int, code: int, msg: str) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps({"code": code, "msg": msg}))


@attrs.define(eq=False)
class RestVenue:
    """Answers Binance order and listenKey requests; checks every signature.

    Attributes:
        lose_posts: the next this many order POSTs time out before reaching the venue.
        answer_lost: the next this many order POSTs are carried out, then time out.
        fill: new orders fill at once instead of resting (queries find them FILLED; a
            FULL answer carries the fill, an ACK answer only the order id).
    """

    lose_posts: int = 0
    answer_lost: int = 0
    fill: bool = False
    seen: list[Seen] = attrs.field(factory=list)
    orders: dict[str, dict[str, object]] = attrs.field(factory=dict)
    listen_keys: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        raw = request.url.query.decode()
        params = tuple(parse_qsl(raw, keep_blank_values=True))
        signature_ok = None
        if "signature=" in raw:
            payload, _, signature = raw.rpartition("&signature=")
            signature_ok = sign(SECRET, payload) == signature
        self.seen.append(
            Seen(
                request.method,
                request.url.path,
                params,
                request.headers.get("X-MBX-APIKEY"),
                signature_ok,
            )
        )
        if request.url.path == "/api/v3/userDataStream":
            return self._user_stream(request.method)
        if signature_ok is not True:
            return _error(400, -1022, "Signature for this request is not valid.")
        return self._order(request, dict(params))

    def _user_stream(self, method: str) -> httpx.Response:
        if method == "POST":
            self.listen_keys += 1
            return httpx.Response(200, json={"listenKey": f"key{self.listen_keys}"})
        return httpx.Response(200, json={})

    def _order(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        if request.method == "POST":
            if self.lose_posts:
                self.lose_posts -= 1
                raise httpx.ReadTimeout("timed out", request=request)
            return self._new(request, params)
        order = self.orders.get(params["origClientOrderId"])
        if request.method == "GET":
            if order is None:
                return _error(400, -2013, "Order does not exist.")
            return httpx.Response(200, content=orjson.dumps(order))
        if order is None or order["status"] != "NEW":
            return _error(400, -2011, "Unknown order sent.")
        order["status"] = "CANCELED"
        answer = order | {"origClientOrderId": order["clientOrderId"], "clientOrderId": "cancel1"}
        return httpx.Response(200, content=orjson.dumps(answer))

    def _new(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        client_id = params["newClientOrderId"]
        if client_id in self.orders:
            return _error(400, -2010, "Duplicate order sent.")
        order: dict[str, object] = {
            "symbol": params["symbol"],
            "orderId": 1000 + len(self.orders),
            "clientOrderId": client_id,
            "price": params.get("price", "0.00000000"),
            "origQty": params["quantity"],
            "executedQty": params["quantity"] if self.fill else "0.00000000",
            "status": "FILLED" if self.fill else "NEW",
            "side": params["side"],
            "type": params["type"],
        }
        self.orders[client_id] = order
        if self.answer_lost:
            self.answer_lost -= 1
            raise httpx.ReadTimeout("timed out", request=request)
        if params.get("newOrderRespType") == "ACK":
            ack = {k: order[k] for k in ("symbol", "orderId", "clientOrderId")}
            ack |= {"orderListId": -1, "transactTime": NOW_MS}
            return httpx.Response(200, content=orjson.dumps(ack))
        fills = [{"price": "100.50", "qty": params["quantity"], "tradeId": 7}] if self.fill else []
        return httpx.Response(200, content=orjson.dumps(order | {"fills": fills}))

    def order_calls(self) -> list[str]:
        return [s.method for s in self.seen if s.path == "/api/v3/order"]


@attrs.define(eq=False)
class UserStream:
    """An in-memory user data WebSocket server; frames come from ``script``.

    ``None`` in the script closes the current connection.
    """

    urls: list[str] = attrs.field(factory=list)
    connected: int = 0
    _send: trio.MemorySendChannel[str | None] = attrs.field(init=False)
    _receive: trio.MemoryReceiveChannel[str | None] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[str | None](100)

    def script(self, *frames: str | None) -> None:
        for frame in frames:
            self._send.send_nowait(frame)

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[trio_websocket.WebSocketConnection]:
        self.urls.append(url)
        client, server = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._serve, server)
            ws = await trio_websocket.wrap_client_stream(
                nursery,
                client,  # type: ignore[arg-type]
                "localhost",
                urlsplit(url).path,
            )
            try:
                yield ws
            finally:
                nursery.cancel_scope.cancel()

    async def _serve(self, stream: trio.abc.Stream) -> None:
        async with trio.open_nursery() as nursery:
            request = await trio_websocket.wrap_server_stream(nursery, stream)
            ws = await request.accept()
            self.connected += 1
            async for frame in self._receive:
                if frame is None:
                    await ws.aclose()
                    break
                await ws.send_message(frame)
            nursery.cancel_scope.cancel()
