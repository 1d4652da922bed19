"""What a provider needs from the network, and the real thing on trio-websocket and httpx.

A provider never opens a socket itself: it is handed a :class:`Transport`, so the same
runtime runs over the network (:class:`NetworkTransport`), over a recorded capture
(``meltica_trio.testing.ReplayTransport``), under a script
(``meltica_trio.testing.FakeTransport``) or through a recorder
(:func:`~meltica_trio.providers.open_recording_transport`)::

    async with transport.open_websocket(url) as ws:
        await ws.send_message('{"op": "subscribe", ...}')
        frame = await ws.get_message()
    with trio.fail_after(10.0):
        status, body = await transport.get_json(rest_url)

Every failure leaves a transport as :class:`~meltica_trio.providers.TransportError`;
trio-websocket's and httpx's own errors never reach the runtime.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final, Protocol

import attrs
import httpx
import orjson
import trio
import trio_websocket

from ._errors import TransportError

log = logging.getLogger(__name__)

WS_MESSAGE_QUEUE_SIZE: Final = 64
"""Messages trio-websocket buffers ahead of ``get_message`` (its default is 1): enough to
absorb a burst of ``depth@100ms`` frames across many symbols while the reader publishes."""

WS_MAX_MESSAGE_SIZE: Final = 4 * 1024 * 1024
"""Bytes (characters) of one message beyond which trio-websocket closes the connection
with code 1009. A hard guard against memory blow-up, set above the runtime's per-frame
limit (``MAX_FRAME_BYTES``) so that merely large frames are dropped, not fatal."""

WS_CONNECT_TIMEOUT: Final = 10.0
"""Seconds to open a WebSocket (TCP, TLS and handshake) before it counts as failed."""

WS_CLOSE_TIMEOUT: Final = 2.0
"""Seconds a closing handshake may take; cleanup never waits longer, even when cancelled."""

WS_CANCELLED_CLOSE: Final = 0.1
"""Seconds a cancelled connection gives its close frame. The connection's reader task is
cancelled with it, so the peer's reply could never be read: waiting for it would only
spend the whole ``WS_CLOSE_TIMEOUT`` on every shutdown. The frame goes out; the wait is cut."""

REST_TIMEOUT: Final = 10.0
"""Seconds a REST request may take (connect, write, read each) by default."""

REST_RETRIES: Final = 3
"""Extra attempts of a REST request after a connection error or a 5xx answer."""

REST_RETRY_BACKOFF: Final = 0.25
"""Seconds before the first REST retry; doubled for each further one (0.25, 0.5, 1)."""

TOO_BIG: Final = 1009
"""WebSocket close code "message too big"."""


class WebSocket(Protocol):
    """An open WebSocket connection, as far as a provider uses one."""

    async def send_message(self, message: str) -> None:
        """Send one text message.

        Raises:
            TransportError: the connection is closed or broken.
        """

    async def get_message(self) -> str | bytes:
        """Wait for the next message.

        Raises:
            TransportError: the connection closed (``err.code`` is the close code).
        """

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""


class Transport(Protocol):
    """Opens WebSockets and makes REST GETs for a provider."""

    def open_websocket(self, url: str) -> AbstractAsyncContextManager[WebSocket]:
        """An async context manager: connected on entry, closed on exit.

        Raises:
            TransportError: the connection could not be opened.
        """
        ...

    async def get_json(self, url: str) -> tuple[int, object]:
        """GET ``url``; the HTTP status and the decoded JSON body (``None`` if not JSON).

        Callers bound the whole call with ``trio.fail_after``; a transport may apply
        its own per-phase timeouts too.

        Raises:
            TransportError: no answer (connection failed, timed out).
        """
        ...


@attrs.define(eq=False)
class _TrioWebSocket:
    """A trio-websocket connection that raises :class:`TransportError`."""

    url: str
    _ws: trio_websocket.WebSocketConnection

    async def send_message(self, message: str) -> None:
        try:
            await self._ws.send_message(message)
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(self.url, exc) from exc

    async def get_message(self) -> str | bytes:
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(self.url, exc) from exc

    async def aclose(self) -> None:
        await self._ws.aclose()


def _closed(url: str, exc: trio_websocket.ConnectionClosed) -> TransportError:
    reason = exc.reason
    if reason is None:
        return TransportError(url, "connection closed")
    text = f"connection closed: {reason.code} {reason.name} {reason.reason or ''}".rstrip()
    return TransportError(url, text, reason.code)


@attrs.define(eq=False)
class NetworkTransport:
    """The real transport: trio-websocket for WebSockets, httpx for REST.

    Get one from :func:`open_network_transport`, which owns the HTTP client.

    Args:
        client: the httpx client REST requests go through.
        message_queue_size: trio-websocket's message queue per connection.
        max_message_size: trio-websocket closes a connection (1009) beyond this.
        connect_timeout: seconds to open a WebSocket.
        rest_retries: extra attempts after a connection error or a 5xx answer.
        rest_retry_backoff: seconds before the first retry, doubled per retry.

    Each HTTP phase (connect, write, read, pool) is bounded by the client's timeout
    (``REST_TIMEOUT`` from :func:`open_network_transport`).
    """

    client: httpx.AsyncClient
    message_queue_size: int = attrs.field(default=WS_MESSAGE_QUEUE_SIZE, kw_only=True)
    max_message_size: int = attrs.field(default=WS_MAX_MESSAGE_SIZE, kw_only=True)
    connect_timeout: float = attrs.field(default=WS_CONNECT_TIMEOUT, kw_only=True)
    rest_retries: int = attrs.field(default=REST_RETRIES, kw_only=True)
    rest_retry_backoff: float = attrs.field(default=REST_RETRY_BACKOFF, kw_only=True)

    @asynccontextmanager
    async def open_websocket(self, url: str) -> AsyncIterator[WebSocket]:
        """Connect to ``url``; on exit close it, shielded and within ``WS_CLOSE_TIMEOUT``.

        Raises:
            TransportError: refused, timed out, or a network error while opening.

        Cancellation:
            Safe: the closing handshake runs shielded, bounded by ``WS_CLOSE_TIMEOUT``
            (``WS_CANCELLED_CLOSE`` when cancelled: the reply could not be read).
        """
        try:
            async with trio_websocket.open_websocket_url(
                url,
                message_queue_size=self.message_queue_size,
                max_message_size=self.max_message_size,
                connect_timeout=self.connect_timeout,
                disconnect_timeout=WS_CLOSE_TIMEOUT,
            ) as ws:
                try:
                    yield _TrioWebSocket(url, ws)
                finally:
                    cancelled = trio.current_effective_deadline() == -math.inf
                    budget = WS_CANCELLED_CLOSE if cancelled else WS_CLOSE_TIMEOUT
                    with trio.move_on_after(budget, shield=True):
                        await ws.aclose()
        except (OSError, trio_websocket.HandshakeError, trio.BrokenResourceError) as exc:
            raise TransportError(url, f"cannot connect: {exc!r:.200}") from exc

    async def get_json(self, url: str) -> tuple[int, object]:
        """GET ``url``, retrying connection errors and 5xx answers with backoff.

        Returns:
            The status and the JSON body (``None`` when the body is not JSON); a 5xx
            status only once the retries are spent.

        Raises:
            TransportError: no answer after the retries, or a read that timed out.
        """
        attempt = 0
        while True:
            try:
                response = await self.client.get(url)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt >= self.rest_retries:
                    raise TransportError(url, f"cannot connect: {exc!r:.200}") from exc
            except httpx.HTTPError as exc:
                raise TransportError(url, f"request failed: {exc!r:.200}") from exc
            else:
                if response.status_code < 500 or attempt >= self.rest_retries:
                    return response.status_code, _json_or_none(response.content)
            attempt += 1
            delay = self.rest_retry_backoff * 2 ** (attempt - 1)
            log.info("GET %s failed; retry %d in %.2fs", url, attempt, delay)
            await trio.sleep(delay)


def _json_or_none(content: bytes) -> object:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


@asynccontextmanager
async def open_network_transport(
    *,
    message_queue_size: int = WS_MESSAGE_QUEUE_SIZE,
    max_message_size: int = WS_MAX_MESSAGE_SIZE,
    rest_timeout: float = REST_TIMEOUT,
    rest_retries: int = REST_RETRIES,
) -> AsyncIterator[NetworkTransport]:
    """A :class:`NetworkTransport` with its own httpx client, closed on exit.

    Args:
        message_queue_size: trio-websocket's message queue per connection.
        max_message_size: trio-websocket closes a connection (1009) beyond this.
        rest_timeout: the HTTP client's default timeout in seconds.
        rest_retries: extra attempts after a connection error or a 5xx answer.
    """
    async with httpx.AsyncClient(timeout=httpx.Timeout(rest_timeout)) as client:
        yield NetworkTransport(
            client,
            message_queue_size=message_queue_size,
            max_message_size=max_message_size,
            rest_retries=rest_retries,
        )
