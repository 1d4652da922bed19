"""Helpers for the venue's server tests: a signing REST client and quiet configs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio
from trio_websocket import WebSocketConnection, wrap_client_stream

from meltica_trio.venue import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    ApiCredentials,
    Venue,
    VenueConfig,
    signed_query,
)

ALICE = ApiCredentials("alice-key", "alice-secret", "alice")
BOB = ApiCredentials("bob-key", "bob-secret", "bob")
DEFAULT = ApiCredentials(DEFAULT_API_KEY, DEFAULT_API_SECRET, "demo")
FORM = {"content-type": "application/x-www-form-urlencoded"}


def quiet_config(**changes: Any) -> VenueConfig:
    """A venue without synthetic flow: only the test trades."""
    return VenueConfig(market=None, credentials=(DEFAULT, ALICE, BOB), **changes)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def signed(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    params: dict[str, Any],
    creds: ApiCredentials = DEFAULT,
    *,
    in_body: bool | None = None,
) -> httpx.Response:
    """Send a SIGNED request; parameters in the body for POST/DELETE unless told."""
    params = {**params, "timestamp": params.get("timestamp", now_ms())}
    query = signed_query(creds.secret, params)
    headers = {"X-MBX-APIKEY": creds.api_key, **FORM}
    body = in_body if in_body is not None else method in ("POST", "DELETE")
    if body:
        return await client.request(method, path, content=query, headers=headers)
    return await client.request(method, f"{path}?{query}", headers=headers)


@asynccontextmanager
async def open_ws(venue: Venue, resource: str) -> AsyncIterator[WebSocketConnection]:
    """A WebSocket client on a TCP stream the test owns.

    trio-websocket 0.12 leaves its socket open when the *server* closes the connection
    (the client waits for the TCP close, then never closes its end), which trips
    ResourceWarning; owning the stream lets the test close it whatever happens.
    """
    host, _, port = venue.ws_url.removeprefix("ws://").partition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream, trio.open_nursery() as nursery:
        ws = await wrap_client_stream(nursery, stream, host, resource)
        try:
            yield ws
        finally:
            await ws.aclose()
