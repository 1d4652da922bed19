"""The order gateway: idempotency ledger, order state machine, venue order clients.

Orders enter as SubmitOrder/CancelOrder/QueryOrder commands on the control bus
(:class:`OrderGateway` owns them), go to a venue through a
:class:`VenueOrderClient` (:class:`BinanceOrderClient` for Binance spot), and come
back to the owning consumer as ExecReports, one per state transition.
"""

from ._binance import (
    BINANCE_REST_URL,
    BINANCE_WS_URL,
    BinanceOrderClient,
    BinanceOrderConfig,
    open_binance_orders,
)
from ._client import OrderRef, StreamGap, StreamItem, VenueOrder, VenueOrderClient, VenueUpdate
from ._errors import (
    DuplicateOrderError,
    InvalidTransitionError,
    LedgerFullError,
    UnknownOrderError,
    VenueError,
    VenueRejectedError,
    VenueUnavailableError,
)
from ._gateway import (
    GatewayStatistics,
    OrderGateway,
    ReportSink,
    RetryPolicy,
    venue_client_order_id,
)
from ._ledger import LedgerEntry, LedgerStatistics, MemoryLedger, OrderKey, OrderLedger
from ._state import NEXT, TERMINAL, OrderTracker, Transition, transition_problem

__all__ = [
    "BINANCE_REST_URL",
    "BINANCE_WS_URL",
    "NEXT",
    "TERMINAL",
    "BinanceOrderClient",
    "BinanceOrderConfig",
    "DuplicateOrderError",
    "GatewayStatistics",
    "InvalidTransitionError",
    "LedgerEntry",
    "LedgerFullError",
    "LedgerStatistics",
    "MemoryLedger",
    "OrderGateway",
    "OrderKey",
    "OrderLedger",
    "OrderRef",
    "OrderTracker",
    "ReportSink",
    "RetryPolicy",
    "StreamGap",
    "StreamItem",
    "Transition",
    "UnknownOrderError",
    "VenueError",
    "VenueOrder",
    "VenueOrderClient",
    "VenueRejectedError",
    "VenueUnavailableError",
    "VenueUpdate",
    "open_binance_orders",
    "transition_problem",
    "venue_client_order_id",
]
