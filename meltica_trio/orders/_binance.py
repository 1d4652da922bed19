"""The Binance spot order client: signed REST over httpx, user data stream over trio-websocket.

REST (base URL configurable, so tests and the simulated venue run on localhost)::

    submit   POST   /api/v3/order  symbol side type [timeInForce] quantity [price]
                                   newClientOrderId newOrderRespType=ACK    (SIGNED)
    query    GET    /api/v3/order  symbol origClientOrderId                 (SIGNED)
    cancel   DELETE /api/v3/order  symbol origClientOrderId                 (SIGNED)
    stream   POST   /api/v3/userDataStream -> {"listenKey": ..}             (API key)
             PUT    /api/v3/userDataStream?listenKey=..  every 30 minutes

The execution stream is ``<ws base>/ws/<listenKey>``; ``executionReport`` events
become :class:`~meltica_trio.orders.VenueUpdate` values (see ``_binance_wire`` for the
exec-id scheme and the status mapping). After every (re)connection a
:class:`~meltica_trio.orders.StreamGap` tells the gateway to reconcile live orders;
a lost connection is retried with capped exponential backoff and full jitter.

A new order asks for the ``ACK`` answer: the venue took the order, nothing more.
Its executions come from the stream, one ``executionReport`` per fill with that
fill's price and size. A ``FULL`` answer would race the stream with the order's
state after matching, and when it won, the gateway reported several fills as one
(their total size at the last fill's price) and the stream's own reports of them
were dropped as stale.

REST calls go through a :class:`TransportPool`: one httpx transport, and one
connection, per concurrent call (``_binance_http`` says why not one shared client).

The client never retries an order request: a timeout or a 5xx raises
:class:`VenueUnavailableError` and the gateway reconciles by querying.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeAlias

import attrs
import httpx
import orjson
import trio
import trio_websocket

from meltica_trio._errors import DecodeError

from . import _binance_wire as wire
from ._binance_http import HttpRequester, TransportPool
from ._client import OrderRef, StreamGap, StreamItem, VenueOrder, VenueUpdate
from ._defaults import (
    LISTEN_KEY_KEEPALIVE,
    RECONNECT_BASE,
    RECONNECT_CAP,
    RECV_WINDOW_MS,
    REQUEST_TIMEOUT,
)
from ._errors import VenueError, VenueRejectedError, VenueUnavailableError

log = logging.getLogger(__name__)

BINANCE_REST_URL = "https://api.binance.com"
"""Binance spot's REST base URL, the default of ``BinanceOrderConfig.rest_url``."""
BINANCE_WS_URL = "wss://stream.binance.com:9443"
"""Binance spot's WebSocket base URL (user-data streams), the default of ``ws_url``."""

WsConnector: TypeAlias = Callable[
    [str], AbstractAsyncContextManager[trio_websocket.WebSocketConnection]
]
"""Opens a WebSocket to a URL (``trio_websocket.open_websocket_url`` by default)."""

_STREAM_ERRORS = (
    VenueError,
    DecodeError,
    OSError,
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    trio_websocket.DisconnectionTimeout,
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@attrs.frozen(kw_only=True)
class BinanceOrderConfig:
    """Settings of a Binance order client.

    Attributes:
        api_key: sent as ``X-MBX-APIKEY``.
        api_secret: signs requests (never logged or shown in repr).
        rest_url: REST base URL (``http://127.0.0.1:<port>`` for a local venue).
        ws_url: WebSocket base URL; the stream is ``<ws_url>/ws/<listenKey>``.
        provider: the name orders use for this venue.
        recv_window_ms: ``recvWindow``; also the client's ``settle_time``.
        request_timeout: seconds per REST call.
        keepalive_interval: seconds between listenKey keepalives.
        reconnect_base: seconds before the first stream reconnect.
        reconnect_cap: longest pause between stream reconnects.
    """

    api_key: str = attrs.field(repr=False)
    api_secret: str = attrs.field(repr=False)
    rest_url: str = BINANCE_REST_URL
    ws_url: str = BINANCE_WS_URL
    provider: str = "binance"
    recv_window_ms: int = RECV_WINDOW_MS
    request_timeout: float = REQUEST_TIMEOUT
    keepalive_interval: float = LISTEN_KEY_KEEPALIVE
    reconnect_base: float = RECONNECT_BASE
    reconnect_cap: float = RECONNECT_CAP


@asynccontextmanager
async def open_binance_orders(
    config: BinanceOrderConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    connect_ws: WsConnector | None = None,
    wall_clock_ms: Callable[[], int] = _now_ms,
) -> AsyncIterator[BinanceOrderClient]:
    """A Binance order client with its own HTTP connections, for the block's duration.

    Args:
        config: keys, URLs and timings.
        transport: an httpx transport to use instead of the network (tests); every
            concurrent call shares it.
        connect_ws: opens the user data WebSocket (default: trio-websocket, real socket).
        wall_clock_ms: ms since the epoch, for the signed ``timestamp``.

    Cancellation:
        Leaving the block closes the connections (shielded, bounded by the
        request timeout).
    """
    http = TransportPool.for_url(config.rest_url, config.request_timeout, transport)
    try:
        yield BinanceOrderClient(
            config,
            http,
            connect_ws=connect_ws or trio_websocket.open_websocket_url,
            wall_clock_ms=wall_clock_ms,
        )
    finally:
        with trio.move_on_after(config.request_timeout, shield=True):
            await http.aclose()


@attrs.define(eq=False)
class BinanceOrderClient:
    """Binance's order API as a :class:`~meltica_trio.orders.VenueOrderClient`.

    Get one from :func:`open_binance_orders`, or build it around your own
    ``httpx.AsyncClient`` (any :class:`HttpRequester`) whose ``base_url`` is the REST
    base URL.
    """

    config: BinanceOrderConfig
    http: HttpRequester
    connect_ws: WsConnector = attrs.field(default=trio_websocket.open_websocket_url, kw_only=True)
    wall_clock_ms: Callable[[], int] = attrs.field(default=_now_ms, kw_only=True)
    symbol_of: Callable[[str], str] = attrs.field(default=wire.glued_symbol, kw_only=True)
    _rng: random.Random = attrs.field(factory=random.Random, kw_only=True)

    @property
    def provider(self) -> str:
        """The venue connection's name."""
        return self.config.provider

    @property
    def settle_time(self) -> float:
        """``recvWindow`` in seconds: after it a signed request can no longer land."""
        return self.config.recv_window_ms / 1000

    # -- orders ----------------------------------------------------------------

    async def submit(self, order: VenueOrder) -> VenueUpdate:
        """``POST /api/v3/order``; see :meth:`VenueOrderClient.submit`.

        Returns the acknowledgement (``ACK``, nothing filled): executions follow on
        the stream.
        """
        params = wire.new_order_params(order, self.symbol_of(order.instrument))
        return self._parse(await self._signed("POST", params), wire.parse_ack)

    async def cancel(self, ref: OrderRef) -> VenueUpdate:
        """``DELETE /api/v3/order``; see :meth:`VenueOrderClient.cancel`."""
        params = wire.ref_params(ref.venue_client_order_id, self.symbol_of(ref.instrument))
        return self._parse(await self._signed("DELETE", params), wire.parse_order)

    async def query(self, ref: OrderRef) -> VenueUpdate:
        """``GET /api/v3/order``; see :meth:`VenueOrderClient.query`."""
        params = wire.ref_params(ref.venue_client_order_id, self.symbol_of(ref.instrument))
        return self._parse(await self._signed("GET", params), wire.parse_order)

    def _parse(self, body: object, parse: Callable[[object], VenueUpdate]) -> VenueUpdate:
        try:
            return parse(body)
        except DecodeError as exc:
            # A 2xx we cannot read: the request may well have been carried out.
            raise VenueUnavailableError(self.provider, f"unreadable order answer: {exc}") from exc

    async def _signed(self, method: str, params: list[tuple[str, str]]) -> object:
        query = wire.signed_query(
            params,
            secret=self.config.api_secret,
            timestamp_ms=self.wall_clock_ms(),
            recv_window_ms=self.config.recv_window_ms,
        )
        return await self._call(method, f"{wire.ORDER_PATH}?{query}")

    async def _call(self, method: str, url: str) -> object:
        """One REST call; errors translated (see the ``_errors`` tree).

        Raises:
            VenueUnavailableError: timeout, transport error, 5xx, 429/418.
            VenueRejectedError: any other refusal (or its subclasses).
        """
        headers = {"X-MBX-APIKEY": self.config.api_key}
        try:
            response = await self.http.request(method, url, headers=headers)
        except httpx.TimeoutException as exc:
            raise VenueUnavailableError(self.provider, f"{method} timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise VenueUnavailableError(self.provider, f"{method} failed: {exc!r}") from exc
        if response.status_code >= 300:
            raise wire.venue_error(self.provider, response.status_code, response.content)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            # A 2xx we cannot read: the request may well have been carried out.
            raise VenueUnavailableError(self.provider, f"unreadable answer: {exc}") from exc

    # -- user data stream ----------------------------------------------------------

    async def serve_updates(
        self,
        send: trio.MemorySendChannel[StreamItem],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Forward ``executionReport`` updates into ``send`` until cancelled.

        Reports ready at once (the first connection is made in the background, so a
        venue that is down does not hold up the caller); sends a StreamGap after
        every connection. Owns and closes ``send``.

        Cancellation:
            Safe at any point; the WebSocket is closed on the way out.
        """
        with send:
            task_status.started()
            failures = 0
            while True:
                connected = await self._stream_once(send)
                failures = 0 if connected else failures + 1
                delay = min(self.config.reconnect_cap, self.config.reconnect_base * 2**failures)
                await trio.sleep(self._rng.uniform(0, delay))

    async def _stream_once(self, send: trio.MemorySendChannel[StreamItem]) -> bool:
        """One listenKey and connection, until it ends; True if it got connected."""
        connected = False
        try:
            key = await self._listen_key()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keep_alive, key, nursery.cancel_scope)
                url = f"{self.config.ws_url.rstrip('/')}/ws/{key}"
                async with self.connect_ws(url) as ws:
                    connected = True
                    await send.send(StreamGap(self.provider, "user data stream connected"))
                    await self._pump(ws, send)
                nursery.cancel_scope.cancel(reason="the user data stream ended")
        except* _STREAM_ERRORS as group:
            log.warning("%s user data stream: %s", self.provider, group.exceptions)
        return connected

    async def _pump(
        self, ws: trio_websocket.WebSocketConnection, send: trio.MemorySendChannel[StreamItem]
    ) -> None:
        """Forward events until the connection closes or the listenKey expires."""
        while True:
            message = await ws.get_message()
            try:
                event = wire.parse_user_event(message)
            except DecodeError as exc:
                log.warning("%s: skipping a user data frame: %s", self.provider, exc)
                continue
            if isinstance(event, wire.ListenKeyExpired):
                log.info("%s: listenKey expired; reconnecting", self.provider)
                return
            if event is None:
                continue
            # send() without its scheduler trip while there is room: under load the trip
            # per event let the stream fall behind. Cancellation is still checked first,
            # so at shutdown this stops here rather than on the reader's closed channel.
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                await send.send(event)

    async def _listen_key(self) -> str:
        body = await self._call("POST", wire.USER_STREAM_PATH)
        key = body.get("listenKey") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise VenueUnavailableError(self.provider, f"no listenKey in {body!r:.200}")
        return key

    async def _keep_alive(self, key: str, scope: trio.CancelScope) -> None:
        """PUT the listenKey every ``keepalive_interval``; a refused one ends the stream."""
        while True:
            await trio.sleep(self.config.keepalive_interval)
            try:
                await self._call("PUT", f"{wire.USER_STREAM_PATH}?listenKey={key}")
            except VenueRejectedError as exc:
                log.warning(
                    "%s: listenKey keepalive refused (%s); reconnecting", self.provider, exc
                )
                scope.cancel(reason="listenKey keepalive refused")
                return
            except VenueUnavailableError as exc:
                log.warning("%s: listenKey keepalive failed: %s", self.provider, exc)
