"""Binance spot: what the provider runtime needs to know about the venue (sans-I/O).

One combined-stream connection carries every stream of every symbol, named in the URL
(``/stream?streams=nknusdt@depth@100ms/...``), so nothing is sent after connecting.
Books follow the documented local order book procedure: the runtime buffers diffs and
fetches ``GET /api/v3/depth?symbol=...&limit=1000`` (see ``BookAssembler``). Binance
pings every 20 s and trio-websocket answers; it drops a connection after 24 h, so the
runtime replaces it earlier (``BINANCE_MAX_CONNECTION_AGE``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import urlencode

import attrs

from meltica_trio.providers._adapter import Heartbeat, RestSnapshot
from meltica_trio.providers._assembler import SyncRules
from meltica_trio.providers._parsed import DepthSnapshot, VenueMessage

from ._parse import DEFAULT_SYMBOLS, parse_depth_snapshot, parse_frame
from ._symbols import SymbolMap

BINANCE_WS_URL: Final = "wss://stream.binance.com:9443"
"""Base URL of Binance spot market data streams."""

BINANCE_REST_URL: Final = "https://api.binance.com"
"""Base URL of the Binance spot REST API."""

BINANCE_STREAMS: Final = ("depth@100ms", "bookTicker", "kline_1m", "aggTrade")
"""Streams subscribed per symbol: diffs for the book, top of book, 1-minute candles,
aggregated trades (the set of the shared capture)."""

BINANCE_MAX_STREAMS: Final = 1024
"""Streams one Binance connection may carry (venue limit)."""

BINANCE_DEPTH_PATH: Final = "/api/v3/depth"
"""Path of the REST depth snapshot."""

BINANCE_SNAPSHOT_LIMIT: Final = 1000
"""Levels per side in a REST snapshot: deep enough that diffs rarely touch levels the
snapshot did not have (weight 50 of the 6000/min budget)."""

BINANCE_MAX_CONNECTION_AGE: Final = 23.5 * 3600
"""Seconds before the runtime replaces a connection: Binance ends each one at 24 h,
and rotating half an hour early keeps the hand-over under our control."""

BINANCE_HEARTBEAT: Final = Heartbeat(ping=None, ping_after=300.0, dead_after=300.0)
"""Binance pings us (trio-websocket answers); a connection silent for 5 minutes, with
four symbols' worth of 100 ms depth streams on it, is dead rather than quiet."""


def _instruments(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(i.upper() for i in value)


@attrs.frozen
class BinanceAdapter:
    """Binance spot market data for the runtime; see the module docstring.

    Args:
        instruments: canonical instruments (``"NKN-USDT"``).
        ws_url: base URL of the streams (a local venue in tests).
        rest_url: base URL of the REST API.
        streams: stream names subscribed per symbol.
        symbols: maps symbols to canonical instruments and back.
        snapshot_limit: levels per side of a REST snapshot.
        max_connection_age: seconds before a connection is replaced (``None``: never).
        heartbeat: when a quiet connection is dead.
        provider: the name events are published under.

    Raises:
        ValueError: no instruments, or more streams than a connection may carry.
    """

    instruments: tuple[str, ...] = attrs.field(converter=_instruments)
    ws_url: str = attrs.field(default=BINANCE_WS_URL, kw_only=True)
    rest_url: str = attrs.field(default=BINANCE_REST_URL, kw_only=True)
    streams: tuple[str, ...] = attrs.field(default=BINANCE_STREAMS, kw_only=True)
    symbols: SymbolMap = attrs.field(default=DEFAULT_SYMBOLS, kw_only=True)
    snapshot_limit: int = attrs.field(default=BINANCE_SNAPSHOT_LIMIT, kw_only=True)
    max_connection_age: float | None = attrs.field(
        default=BINANCE_MAX_CONNECTION_AGE, kw_only=True
    )
    heartbeat: Heartbeat = attrs.field(default=BINANCE_HEARTBEAT, kw_only=True)
    provider: str = attrs.field(default="binance", kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not self.instruments:
            raise ValueError("a Binance connection needs at least one instrument")
        count = len(self.instruments) * len(self.streams)
        if count > BINANCE_MAX_STREAMS:
            raise ValueError(f"{count} streams exceed Binance's {BINANCE_MAX_STREAMS}")

    @property
    def rules(self) -> SyncRules:
        """Binance's procedure: REST snapshot, ``U``/``u`` update ids."""
        return SyncRules.BINANCE

    @property
    def subscription_pushes_snapshot(self) -> bool:
        """False: every book needs a REST snapshot."""
        return False

    def symbol(self, instrument: str) -> str:
        """``"NKN-USDT"`` -> ``"NKNUSDT"``."""
        return self.symbols.to_venue(instrument)

    def stream_url(self) -> str:
        """The combined-stream URL, streams grouped by type as Binance lists them."""
        names = [
            f"{self.symbol(i).lower()}@{stream}"
            for stream in self.streams
            for i in self.instruments
        ]
        return f"{self.ws_url.rstrip('/')}/stream?streams={'/'.join(names)}"

    def subscribe_messages(self) -> list[str]:
        """Nothing: the streams are named in the URL."""
        return []

    def text_message(self, raw: str | bytes) -> VenueMessage | None:
        """Binance sends JSON only."""
        return None

    def parse(self, doc: object) -> list[VenueMessage]:
        """Parse a combined-stream frame (see ``binance.parse_frame``)."""
        return parse_frame(doc, self.symbols)

    def snapshot_plan(self, instrument: str) -> RestSnapshot:
        """``GET /api/v3/depth?symbol=<SYMBOL>&limit=<snapshot_limit>``."""
        symbol = self.symbol(instrument)
        query = urlencode({"symbol": symbol, "limit": self.snapshot_limit})
        url = f"{self.rest_url.rstrip('/')}{BINANCE_DEPTH_PATH}?{query}"

        def parse(body: object) -> DepthSnapshot:
            return parse_depth_snapshot(body, symbol, self.symbols)

        return RestSnapshot(url, parse)
