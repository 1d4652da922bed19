"""A simulated exchange on localhost that speaks the Binance spot subset.

A real HTTP + WebSocket server (hypercorn on trio), a price-time-priority matching
engine per symbol and a seeded synthetic market, so the whole system runs over real
sockets with no internet::

    async with open_venue(VenueConfig(seed=1)) as venue:
        ...  # REST at venue.http_url, streams at venue.ws_url

Execution ids: Binance's ``executionReport`` has no field documented as an execution
id; this venue fills ``I`` (documented as "ignore") with a venue-wide unique,
increasing execution id. Clients deduplicate reports on ``I``; against real Binance,
use ``(s, i, x, t)`` plus ``X`` and ``z`` instead.
"""

from __future__ import annotations

from ._config import (
    DEFAULT_ACCOUNT,
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_SYMBOLS,
    ApiCredentials,
    SymbolSpec,
    VenueConfig,
)
from ._faults import FaultConfig, FaultPhase, Faults, FaultStatistics
from ._market import MarketConfig, SyntheticMarket
from ._matching import MatchingEngine
from ._orders import (
    DuplicateOrderError,
    ExecType,
    ExecutionReport,
    Fill,
    LevelChange,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderView,
    Outcome,
    TimeInForce,
    UnknownOrderError,
)
from ._protocol import ApiError, sign, signed_query, total_params
from ._server import Venue, VenueStatistics, open_venue, run_venue_cli, serve_venue

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "DEFAULT_SYMBOLS",
    "ApiCredentials",
    "ApiError",
    "DuplicateOrderError",
    "ExecType",
    "ExecutionReport",
    "FaultConfig",
    "FaultPhase",
    "FaultStatistics",
    "Faults",
    "Fill",
    "LevelChange",
    "MarketConfig",
    "MatchingEngine",
    "OrderRequest",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "OrderView",
    "Outcome",
    "SymbolSpec",
    "SyntheticMarket",
    "TimeInForce",
    "UnknownOrderError",
    "Venue",
    "VenueConfig",
    "VenueStatistics",
    "open_venue",
    "run_venue_cli",
    "serve_venue",
    "sign",
    "signed_query",
    "total_params",
]
