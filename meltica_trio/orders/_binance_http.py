"""HTTP for the Binance order client: one keep-alive connection per concurrent call.

Two costs of a shared ``httpx.AsyncClient`` dominated the order client's CPU:

- httpcore's connection pool walks every pooled connection each time it assigns or
  releases one, and polls the socket of every idle connection (a syscall) to catch a
  server's close. A request makes at least two passes, and more when concurrent
  callers race for connections: with the gateway's 16 workers sharing one pool, about
  60 socket polls per order request.
- The client layer above the transport (URL merging, cookie jar, auth and redirect
  handling, event hooks) costs as much again, and an order call needs none of it.

:class:`TransportPool` lends each concurrent call an ``httpx`` transport of its own,
holding one connection, and sends the request straight to it; per order request this
took the client's share from ~1.6 to ~0.5 ms (16 workers, loopback venue). What the
client layer did that still matters is kept: the proxy the environment names
(``HTTPS_PROXY``, ``NO_PROXY``...) and httpx's ``User-Agent``.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Mapping
from typing import Final, Protocol

import attrs
import httpx

__all__ = ["HttpRequester", "TransportPool", "environment_proxy"]

DEFAULT_HEADERS: Final = {"User-Agent": f"python-httpx/{httpx.__version__}", "Accept": "*/*"}
"""Sent with every call, as ``httpx.AsyncClient`` would (some gateways refuse no agent)."""


class HttpRequester(Protocol):
    """What the order client needs to send a REST request (``httpx.AsyncClient`` is one)."""

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str]
    ) -> httpx.Response:
        """Send one request (``url`` relative to the REST base) and read its whole answer."""


def _without_trailing_slash(url: str) -> str:
    return url.rstrip("/")


def environment_proxy(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url``, or None (``NO_PROXY``, or none).

    ``HTTPS_PROXY``/``HTTP_PROXY`` by the URL's scheme, else ``ALL_PROXY``, as an
    ``httpx.AsyncClient`` trusting the environment would use.
    """
    url = httpx.URL(base_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if proxy is None or urllib.request.proxy_bypass(url.host):
        return None
    return proxy


@attrs.define(eq=False)
class TransportPool:
    """``httpx`` transports lent one per call, each keeping one connection alive.

    Transports are made on demand, so there are as many as calls ever ran at once
    (bounded by the callers: the gateway's workers and the stream's keepalive);
    between calls they wait with their connection open.

    Args:
        base_url: the REST base URL (``https://api.binance.com``).
        timeout: seconds each step of a call (connect, write, read) may take.
        make: builds a transport; an injected one (tests) may be returned every time.
    """

    base_url: str = attrs.field(converter=_without_trailing_slash)
    timeout: float
    make: Callable[[], httpx.AsyncBaseTransport] = attrs.field(kw_only=True)
    _idle: list[httpx.AsyncBaseTransport] = attrs.field(init=False, factory=list)
    _made: list[httpx.AsyncBaseTransport] = attrs.field(init=False, factory=list)
    _extensions: dict[str, object] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._extensions = {"timeout": httpx.Timeout(self.timeout).as_dict()}

    @classmethod
    def for_url(
        cls,
        base_url: str,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> TransportPool:
        """Transports to ``base_url``: ``transport`` for every call, or one per call."""
        if transport is not None:
            injected = transport
            return cls(base_url, timeout, make=lambda: injected)
        # One TLS context for every transport: building one loads the CA bundle.
        tls = httpx.create_ssl_context()
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        proxy = environment_proxy(base_url)

        def make() -> httpx.AsyncBaseTransport:
            return httpx.AsyncHTTPTransport(verify=tls, limits=limits, proxy=proxy)

        return cls(base_url, timeout, make=make)

    @property
    def transports(self) -> int:
        """Transports made so far (the most calls that ran at once)."""
        return len({id(t) for t in self._made})

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str]
    ) -> httpx.Response:
        """Send one request on a transport no other call is using; read the answer.

        Raises:
            httpx.TransportError: as ``httpx.AsyncClient.request`` (``httpx.TimeoutException``
                when a step took longer than ``timeout``).

        Cancellation:
            Safe: httpx closes a connection whose exchange was cut short, and the
            transport goes back to the pool (it reconnects on its next call).
        """
        if self._idle:
            transport = self._idle.pop()  # the most recently used: its connection is warm
        else:
            transport = self.make()
            self._made.append(transport)
        try:
            request = httpx.Request(
                method,
                self.base_url + url,
                headers={**DEFAULT_HEADERS, **headers},
                extensions=self._extensions,
            )
            response = await transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
            return response
        finally:
            self._idle.append(transport)

    async def aclose(self) -> None:
        """Close every transport made (call once no call is running)."""
        made = {id(t): t for t in self._made}
        self._made, self._idle = [], []
        for transport in made.values():
            await transport.aclose()
