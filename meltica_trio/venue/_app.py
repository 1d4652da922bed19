"""The venue's HTTP and WebSocket surface: a Starlette app speaking the Binance spot subset.

REST (errors as Binance's ``{"code": ..., "msg": ...}``)::

    GET    /api/v3/ping | /api/v3/time | /api/v3/exchangeInfo | /api/v3/depth
    POST   /api/v3/order           SIGNED   new LIMIT / MARKET order
    GET    /api/v3/order           SIGNED   query by orderId or origClientOrderId
    DELETE /api/v3/order           SIGNED   cancel by orderId or origClientOrderId
    GET    /api/v3/openOrders      SIGNED   open orders (of a symbol, or all)
    POST | PUT | DELETE /api/v3/userDataStream   API key only: listenKey lifecycle

WebSocket::

    /stream?streams=a/b/c    combined streams, each message {"stream": ..., "data": ...}
    /ws/<name>[/<name>...]   raw streams (the payload alone), or a user stream by listenKey

Market streams: ``<symbol>@depth@100ms``, ``<symbol>@depth``, ``<symbol>@aggTrade``,
``<symbol>@bookTicker``. A listenKey streams that account's ``executionReport`` events.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl

import attrs
import orjson
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import _protocol as wire
from ._config import ApiCredentials
from ._exchange import Exchange, SymbolState
from ._faults import FaultPhase, Faults, RestFault
from ._hub import Frame, Subscription
from ._orders import OrderRequest, OrderSide, OrderType, TimeInForce

__all__ = ["build_app"]

DEFAULT_RECV_WINDOW: Final = 5000
"""Milliseconds a signed request stays valid when it names no ``recvWindow`` (Binance's)."""

MAX_RECV_WINDOW: Final = 60_000
"""Largest ``recvWindow`` Binance accepts, in milliseconds."""

MAX_DEPTH: Final = 5000
"""Largest ``limit`` of ``GET /api/v3/depth``."""

DEFAULT_DEPTH: Final = 100
"""Levels per side of ``GET /api/v3/depth`` without a ``limit`` (Binance's default)."""

_CLIENT_ID: Final = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_DECIMAL: Final = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")

Params = dict[str, str]
Handler = Callable[[Request], Awaitable[Response]]


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(error: wire.ApiError) -> Response:
    return _json(error.body(), error.status)


def _decimal(params: Params, name: str) -> Decimal:
    raw = params.get(name)
    if not raw:
        raise wire.ApiError.mandatory(name)
    if not _DECIMAL.match(raw):
        raise wire.ApiError.illegal_chars(name)
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise wire.ApiError.illegal_chars(name) from None


def _int(params: Params, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise wire.ApiError.mandatory(name) from None


_E = TypeVar("_E", OrderSide, OrderType, TimeInForce)


def _enum(kind: type[_E], params: Params, name: str, invalid: wire.ApiError) -> _E:
    raw = params.get(name)
    if not raw:
        raise wire.ApiError.mandatory(name)
    try:
        return kind(raw)
    except ValueError:
        raise invalid from None


def _order_request(params: Params, owner: str, state: SymbolState) -> OrderRequest:
    """Validate ``POST /api/v3/order`` parameters into an engine request."""
    side = _enum(OrderSide, params, "side", wire.INVALID_SIDE)
    kind = _enum(OrderType, params, "type", wire.INVALID_TYPE)
    quantity = _decimal(params, "quantity")
    spec = state.spec
    if quantity < spec.step_size or quantity % spec.step_size:
        raise wire.LOT_SIZE
    client_id = params.get("newClientOrderId")
    if client_id is not None and not _CLIENT_ID.match(client_id):
        raise wire.ApiError.illegal_chars("newClientOrderId")
    if kind is OrderType.MARKET:
        for name in ("price", "timeInForce"):
            if name in params:
                raise wire.ApiError(400, -1106, f"Parameter '{name}' sent when not required.")
        return OrderRequest(
            owner=owner, side=side, type=kind, quantity=quantity, client_order_id=client_id
        )
    tif = _enum(TimeInForce, params, "timeInForce", wire.INVALID_TIF)
    price = _decimal(params, "price")
    if price < spec.tick_size or price % spec.tick_size:
        raise wire.PRICE_FILTER
    return OrderRequest(
        owner=owner,
        side=side,
        type=kind,
        quantity=quantity,
        price=price,
        time_in_force=tif,
        client_order_id=client_id,
    )


async def _body(request: Request) -> str:
    """The request body as text; "" without reading when the headers announce none.

    Clients of the order endpoints send every parameter in the query string, and
    reading an empty body still waits for the server's end-of-body message.
    """
    headers = request.headers
    if request.method == "GET" or (
        headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers
    ):
        return ""
    return (await request.body()).decode("latin-1")


def _order_key(params: Params) -> tuple[int | None, str | None]:
    order_id = _int(params, "orderId")
    client_id = params.get("origClientOrderId") or None
    if order_id is None and client_id is None:
        raise wire.ApiError(
            400,
            -1102,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        )
    return order_id, client_id


def _queued(receive: trio.MemoryReceiveChannel[Frame], first: Frame) -> list[Frame]:
    """``first`` and every frame queued behind it, without waiting."""
    frames = [first]
    while True:
        try:
            frames.append(receive.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return frames


@attrs.define(eq=False)
class _Connection:
    """Why a WebSocket connection ended: a close code to send, or ``None`` (client left)."""

    code: int | None = 1000
    sent: int = 0


@attrs.define(eq=False)
class VenueApp:
    """The endpoints, bound to one exchange and its fault knobs."""

    exchange: Exchange
    faults: Faults

    # -- plumbing ---------------------------------------------------------------------

    def rest(self, handler: Handler) -> Handler:
        """Wrap an endpoint: Binance error bodies, the REST fault knobs, the call count."""

        async def endpoint(request: Request) -> Response:
            path: str = request.scope["path"]  # not request.url: it builds and parses a URL
            response = await self._answer(handler, request, path)
            self.exchange.requests[(request.method, path, response.status_code)] += 1
            return response

        return endpoint

    async def _answer(self, handler: Handler, request: Request, path: str) -> Response:
        fault, phase = self.faults.roll_rest(path)
        config = self.faults.config
        if config.rest_delay > 0 and self.faults.applies_to(path):
            await trio.sleep(config.rest_delay)
        if fault is not RestFault.NONE and phase is FaultPhase.BEFORE:
            return await self._inflict(fault)
        try:
            response = await handler(request)
        except wire.ApiError as error:
            response = _error(error)
        if fault is not RestFault.NONE:
            return await self._inflict(fault)
        return response

    async def _inflict(self, fault: RestFault) -> Response:
        if fault is RestFault.HANG:
            await trio.sleep(self.faults.config.rest_hang)
        return _json(wire.INTERNAL.body(), 503)

    async def _signed(self, request: Request) -> tuple[ApiCredentials, Params]:
        """Authenticate a SIGNED request: API key, signature, then timestamp."""
        credentials = self.exchange.credentials(request.headers.get("X-MBX-APIKEY"))
        query = request.scope["query_string"].decode("latin-1")
        body = await _body(request)
        params = dict(parse_qsl(body)) | dict(parse_qsl(query))  # the query string wins
        payload, signature = wire.total_params(query, body)
        if not signature:
            raise wire.ApiError.mandatory("signature")
        expected = wire.sign(credentials.secret, payload)
        if not hmac.compare_digest(expected, signature.lower()):
            raise wire.BAD_SIGNATURE
        self._check_timestamp(params)
        return credentials, params

    def _check_timestamp(self, params: Params) -> None:
        timestamp = _int(params, "timestamp")
        if timestamp is None:
            raise wire.ApiError.mandatory("timestamp")
        window = _int(params, "recvWindow")
        window = DEFAULT_RECV_WINDOW if window is None else window
        if window > MAX_RECV_WINDOW:
            raise wire.BAD_RECV_WINDOW
        now = self.exchange.now_ms()
        if timestamp >= now + 1000:
            raise wire.FUTURE_TIMESTAMP
        if now - timestamp > window:
            raise wire.STALE_TIMESTAMP

    # -- public market data -----------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        """``GET /api/v3/ping``."""
        return _json({})

    async def time(self, request: Request) -> Response:
        """``GET /api/v3/time``."""
        return _json({"serverTime": self.exchange.now_ms()})

    async def exchange_info(self, request: Request) -> Response:
        """``GET /api/v3/exchangeInfo`` (all symbols, or the one named by ``symbol``)."""
        states = list(self.exchange.symbols.values())
        if "symbol" in request.query_params:
            states = [self.exchange.symbol(request.query_params["symbol"])]
        return _json(
            {
                "timezone": "UTC",
                "serverTime": self.exchange.now_ms(),
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": [state.spec.exchange_info() for state in states],
            }
        )

    async def depth(self, request: Request) -> Response:
        """``GET /api/v3/depth?symbol=&limit=``: a snapshot with its ``lastUpdateId``."""
        params = dict(request.query_params)
        state = self.exchange.symbol(params.get("symbol") or None)
        limit = _int(params, "limit") or DEFAULT_DEPTH
        if not 1 <= limit <= MAX_DEPTH:
            raise wire.ApiError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        bids, asks = state.engine.depth(limit)
        return _json(
            {
                "lastUpdateId": state.engine.update_id,
                "bids": [[wire.fmt(p), wire.fmt(q)] for p, q in bids],
                "asks": [[wire.fmt(p), wire.fmt(q)] for p, q in asks],
            }
        )

    # -- orders -----------------------------------------------------------------------

    async def new_order(self, request: Request) -> Response:
        """``POST /api/v3/order`` (SIGNED)."""
        credentials, params = await self._signed(request)
        state = self.exchange.symbol(params.get("symbol"))
        order = _order_request(params, credentials.account, state)
        response_type = params.get("newOrderRespType", "FULL")
        if response_type not in ("ACK", "RESULT", "FULL"):
            raise wire.ApiError(
                400, -1130, "Data sent for parameter 'newOrderRespType' is not valid."
            )
        outcome = self.exchange.place(state, order)
        symbol = state.spec.symbol
        if response_type == "ACK":
            return _json(wire.order_ack(symbol, outcome.order))
        return _json(wire.order_full(symbol, outcome, with_fills=response_type == "FULL"))

    async def query_order(self, request: Request) -> Response:
        """``GET /api/v3/order`` (SIGNED)."""
        credentials, params = await self._signed(request)
        state = self.exchange.symbol(params.get("symbol"))
        order_id, client_id = _order_key(params)
        order = self.exchange.query(state, credentials.account, order_id, client_id)
        return _json(wire.order_query(state.spec.symbol, order))

    async def cancel_order(self, request: Request) -> Response:
        """``DELETE /api/v3/order`` (SIGNED)."""
        credentials, params = await self._signed(request)
        state = self.exchange.symbol(params.get("symbol"))
        order_id, client_id = _order_key(params)
        cancel_id = params.get("newClientOrderId") or f"cancel-{self.exchange.now_ms()}"
        outcome = self.exchange.cancel(
            state, credentials.account, order_id=order_id, client_order_id=client_id,
            cancel_id=cancel_id,
        )  # fmt: skip
        return _json(wire.order_canceled(state.spec.symbol, outcome.order, cancel_id))

    async def open_orders(self, request: Request) -> Response:
        """``GET /api/v3/openOrders`` (SIGNED): of one symbol, or of all."""
        credentials, params = await self._signed(request)
        states = list(self.exchange.symbols.values())
        if params.get("symbol"):
            states = [self.exchange.symbol(params["symbol"])]
        return _json(
            [
                wire.order_query(state.spec.symbol, order)
                for state in states
                for order in state.engine.open_orders(credentials.account)
            ]
        )

    # -- user data stream -------------------------------------------------------------

    async def user_stream(self, request: Request) -> Response:
        """``POST``/``PUT``/``DELETE /api/v3/userDataStream`` (API key, no signature)."""
        account = self.exchange.credentials(request.headers.get("X-MBX-APIKEY")).account
        if request.method == "POST":
            return _json({"listenKey": self.exchange.open_listen_key(account)})
        params = dict(parse_qsl(await _body(request))) | dict(request.query_params)
        if request.method == "PUT":
            self.exchange.keepalive_listen_key(account, params.get("listenKey"))
        else:
            self.exchange.close_listen_key(account, params.get("listenKey"))
        return _json({})

    # -- WebSocket --------------------------------------------------------------------

    async def combined(self, websocket: WebSocket) -> None:
        """``/stream?streams=a/b/c``: every message wrapped with its stream's name."""
        await self._serve(websocket, websocket.query_params.get("streams", ""), combined=True)

    async def raw(self, websocket: WebSocket) -> None:
        """``/ws/<stream or listenKey>``: payloads as they are."""
        await self._serve(websocket, websocket.path_params["names"], combined=False)

    def _streams(self, spec: str) -> list[str] | None:
        """Stream names of a request (symbols lowercased); ``None`` if a listenKey is bad."""
        names = []
        for name in filter(None, spec.split("/")):
            if "@" in name:
                symbol, _, kind = name.partition("@")
                names.append(f"{symbol.lower()}@{kind}")
            elif self.exchange.is_listen_key(name):
                names.append(name)
            else:
                return None
        return names or None

    async def _serve(self, websocket: WebSocket, spec: str, *, combined: bool) -> None:
        streams = self._streams(spec)
        if streams is None:
            await websocket.close(code=1008)  # before accept: the handshake gets a 403
            return
        # Subscribed before the handshake completes: a client that sees the connection
        # open must get every message published from then on (fills included).
        sub = self.exchange.hub.subscribe(streams)
        conn = _Connection()
        try:
            await websocket.accept()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_client, websocket, conn, nursery.cancel_scope)
                nursery.start_soon(self._watch_drops, conn, nursery.cancel_scope)
                await self._send_frames(websocket, sub, conn, combined=combined)
                nursery.cancel_scope.cancel()
        finally:
            self.exchange.hub.unsubscribe(sub)
        if conn.code is not None:
            await websocket.close(code=conn.code)

    async def _send_frames(
        self, websocket: WebSocket, sub: Subscription, conn: _Connection, *, combined: bool
    ) -> None:
        """Send the subscription's frames until it ends or the connection is dropped.

        Each wake-up sends every frame queued by then: a receive per frame would cost
        the connection one more trip through the scheduler per message, and under load
        the user data stream would fall behind the REST answers it must keep up with.
        """
        async for first in sub.receive:
            for frame in _queued(sub.receive, first):
                await websocket.send_text(frame.combined if combined else frame.raw)
                if self._drop_due(conn):
                    return
        conn.code = 1008 if sub.overflowed else 1000

    def _drop_due(self, conn: _Connection) -> bool:
        conn.sent += 1
        every = self.faults.config.ws_drop_every
        if every is not None and conn.sent >= every:
            self.faults.note_ws_drop()
            conn.code = 1011
            return True
        return False

    async def _watch_client(
        self, websocket: WebSocket, conn: _Connection, scope: trio.CancelScope
    ) -> None:
        try:
            while True:
                await websocket.receive_text()  # requests on the socket are not served
        except (WebSocketDisconnect, RuntimeError, KeyError):
            conn.code = None
            scope.cancel()

    async def _watch_drops(self, conn: _Connection, scope: trio.CancelScope) -> None:
        await self.faults.drop_signal().wait()
        self.faults.note_ws_drop()
        conn.code = 1011
        scope.cancel()


def build_app(exchange: Exchange, faults: Faults) -> Starlette:
    """The Starlette app serving ``exchange`` with ``faults`` applied."""
    app = VenueApp(exchange, faults)
    rest = app.rest
    routes = [
        Route("/api/v3/ping", rest(app.ping), methods=["GET"]),
        Route("/api/v3/time", rest(app.time), methods=["GET"]),
        Route("/api/v3/exchangeInfo", rest(app.exchange_info), methods=["GET"]),
        Route("/api/v3/depth", rest(app.depth), methods=["GET"]),
        Route("/api/v3/order", rest(app.new_order), methods=["POST"]),
        Route("/api/v3/order", rest(app.query_order), methods=["GET"]),
        Route("/api/v3/order", rest(app.cancel_order), methods=["DELETE"]),
        Route("/api/v3/openOrders", rest(app.open_orders), methods=["GET"]),
        Route("/api/v3/userDataStream", rest(app.user_stream), methods=["POST", "PUT", "DELETE"]),
        WebSocketRoute("/stream", app.combined),
        WebSocketRoute("/ws/{names:path}", app.raw),
    ]
    return Starlette(routes=routes)
