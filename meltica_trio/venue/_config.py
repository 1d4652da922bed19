"""Configuration of the simulated venue: symbols, credentials, market, faults.

Every default is a named constant below, with its unit and the reason for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Final

import attrs

from ._faults import FaultConfig
from ._market import MarketConfig

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "DEFAULT_SYMBOLS",
    "ApiCredentials",
    "SymbolSpec",
    "VenueConfig",
    "wall_clock_ms",
]

DEFAULT_HOST: Final = "127.0.0.1"
"""The venue listens on loopback only: it is a test and demo fixture, never a service."""

DEFAULT_API_KEY: Final = "meltica-sim-key"
"""API key of the default account (the venue is local; the key is not a secret)."""

DEFAULT_API_SECRET: Final = "meltica-sim-secret"
"""HMAC secret of the default account."""

DEFAULT_ACCOUNT: Final = "demo"
"""Account behind the default key; the synthetic market's participants are others."""

STREAM_CAPACITY: Final = 1024
"""Messages a WebSocket connection may lag before the venue drops it (~10 s of depth
diffs for a few symbols); Binance, too, disconnects clients that do not keep up."""

LISTEN_KEY_TTL: Final = 3600.0
"""Seconds a listenKey lives without a keepalive (60 minutes, as on Binance)."""

GRACEFUL_TIMEOUT: Final = 0.5
"""Seconds open connections get to finish when the venue shuts down."""

WS_PING_INTERVAL: Final = 20.0
"""Seconds between the server's WebSocket pings (Binance's interval)."""


def wall_clock_ms() -> int:
    """Milliseconds since the epoch: the venue's clock for timestamps and recvWindow."""
    return time.time_ns() // 1_000_000


@attrs.frozen(kw_only=True)
class SymbolSpec:
    """One tradable symbol and its filters.

    Attributes:
        symbol: Binance's name (``"BTCUSDT"``).
        base_asset: ``"BTC"``.
        quote_asset: ``"USDT"``.
        tick_size: prices are multiples of it (PRICE_FILTER).
        step_size: quantities are multiples of it (LOT_SIZE); also the minimum.
        initial_price: where the synthetic market's mid starts.
    """

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    initial_price: Decimal

    def exchange_info(self) -> dict[str, object]:
        """This symbol's entry in ``GET /api/v3/exchangeInfo``."""
        return {
            "symbol": self.symbol,
            "status": "TRADING",
            "baseAsset": self.base_asset,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote_asset,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": f"{self.tick_size:f}",
                    "maxPrice": "1000000.00000000",
                    "tickSize": f"{self.tick_size:f}",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": f"{self.step_size:f}",
                    "maxQty": "9000.00000000",
                    "stepSize": f"{self.step_size:f}",
                },
            ],
            "permissions": ["SPOT"],
        }


DEFAULT_SYMBOLS: Final = (
    SymbolSpec(
        symbol="BTCUSDT",
        base_asset="BTC",
        quote_asset="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.00001"),
        initial_price=Decimal("60000.00"),
    ),
    SymbolSpec(
        symbol="ETHUSDT",
        base_asset="ETH",
        quote_asset="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.0001"),
        initial_price=Decimal("3000.00"),
    ),
)
"""Two liquid-looking pairs, enough to exercise per-symbol state."""


@attrs.frozen
class ApiCredentials:
    """An API key, its HMAC secret and the account it trades for."""

    api_key: str
    secret: str
    account: str


@attrs.frozen(kw_only=True)
class VenueConfig:
    """How to run a simulated venue.

    Attributes:
        host: interface to bind (loopback).
        port: TCP port; 0 picks a free one (read it back from ``Venue.http_url``).
        seed: seeds the synthetic market and the fault dice.
        symbols: what trades.
        credentials: API keys the venue accepts.
        market: the synthetic market's flow; ``None`` for a quiet venue where only
            clients trade.
        faults: fault knobs at start (adjust at runtime through ``Venue.faults``).
        clock: wall time in milliseconds, for timestamps and recvWindow checks.
        stream_capacity: messages a WebSocket may lag before it is dropped.
        listen_key_ttl: seconds a listenKey lives without a keepalive.
        graceful_timeout: seconds connections get to finish at shutdown.
        ws_ping_interval: seconds between server pings (``None``: no pings).
    """

    host: str = DEFAULT_HOST
    port: int = 0
    seed: int = 0
    symbols: tuple[SymbolSpec, ...] = DEFAULT_SYMBOLS
    credentials: tuple[ApiCredentials, ...] = (
        ApiCredentials(DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_ACCOUNT),
    )
    market: MarketConfig | None = attrs.field(factory=MarketConfig)
    faults: FaultConfig = attrs.field(factory=FaultConfig)
    clock: Callable[[], int] = attrs.field(default=wall_clock_ms, eq=False)
    stream_capacity: int = STREAM_CAPACITY
    listen_key_ttl: float = LISTEN_KEY_TTL
    graceful_timeout: float = GRACEFUL_TIMEOUT
    ws_ping_interval: float | None = WS_PING_INTERVAL
