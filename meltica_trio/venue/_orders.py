"""Orders, fills and execution reports: the values the matching engine takes and gives.

All are frozen snapshots: an :class:`OrderView` taken after one engine call does not
change when a later call fills or cancels the order.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Final

import attrs

from meltica_trio._errors import MelticaError

__all__ = [
    "OPEN",
    "ZERO",
    "DuplicateOrderError",
    "ExecType",
    "ExecutionReport",
    "Fill",
    "LevelChange",
    "OrderRequest",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "OrderView",
    "Outcome",
    "TimeInForce",
    "UnknownOrderError",
]

ZERO: Final = Decimal(0)


class OrderSide(enum.Enum):
    """Side of an order (Binance's ``side``)."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(enum.Enum):
    """The order types the engine matches (Binance's ``type``)."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"


class TimeInForce(enum.Enum):
    """How long a limit order's remainder lives (Binance's ``timeInForce``)."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(enum.Enum):
    """Binance's order status (``X`` in an execution report)."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class ExecType(enum.Enum):
    """Binance's execution type (``x`` in an execution report)."""

    NEW = "NEW"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


OPEN: Final = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})


class DuplicateOrderError(MelticaError, ValueError):
    """An open order of the same owner already uses this client order id.

    Attributes:
        client_order_id: the id in use.
    """

    def __init__(self, client_order_id: str) -> None:
        self.client_order_id = client_order_id
        super().__init__(f"client order id {client_order_id!r} is in use by an open order")


class UnknownOrderError(MelticaError, KeyError):
    """No order of this owner has the given order id or client order id.

    Attributes:
        key: the order id or client order id looked up.
    """

    def __init__(self, key: int | str) -> None:
        self.key = key
        super().__init__(f"no such order: {key!r}")


@attrs.frozen(kw_only=True)
class OrderRequest:
    """A new order as the engine takes it (validated by the caller).

    Attributes:
        owner: the account the order belongs to; reports are addressed to it.
        side: BUY or SELL.
        type: LIMIT or MARKET.
        quantity: base quantity, positive.
        price: limit price (``None`` for MARKET).
        time_in_force: for LIMIT orders.
        client_order_id: the caller's id; the engine makes one when ``None``.
    """

    owner: str
    side: OrderSide
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    client_order_id: str | None = None


@attrs.frozen(kw_only=True)
class OrderView:
    """An order as it stands after a call (a snapshot: later calls do not change it)."""

    order_id: int
    client_order_id: str
    owner: str
    side: OrderSide
    type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal | None
    filled: Decimal
    quote_filled: Decimal
    status: OrderStatus
    created_ms: int
    updated_ms: int
    working: bool

    @property
    def remaining(self) -> Decimal:
        """Quantity not yet filled (zero once the order is closed by a fill)."""
        return self.quantity - self.filled

    @property
    def is_open(self) -> bool:
        """True while the order can still fill or be canceled."""
        return self.status in OPEN


@attrs.frozen(kw_only=True)
class Fill:
    """One match between a taker and a resting maker order, at the maker's price."""

    trade_id: int
    price: Decimal
    quantity: Decimal
    taker_order_id: int
    maker_order_id: int
    taker_side: OrderSide
    time_ms: int


@attrs.frozen(kw_only=True)
class ExecutionReport:
    """One change to one order, as Binance's ``executionReport`` reports it.

    ``exec_id`` is unique across the engine's life (and across a venue when the engines
    share an id source); it maps to the ``I`` field on the wire.
    """

    exec_id: int
    order: OrderView
    exec_type: ExecType
    last_quantity: Decimal = ZERO
    last_price: Decimal = ZERO
    trade_id: int = -1
    is_maker: bool = False
    cancel_client_order_id: str = ""
    time_ms: int


@attrs.frozen
class LevelChange:
    """A book level's new total quantity (zero: the level is gone)."""

    update_id: int
    side: OrderSide
    price: Decimal
    quantity: Decimal


@attrs.frozen(kw_only=True)
class Outcome:
    """Everything one engine call changed, in the order it happened."""

    order: OrderView
    reports: tuple[ExecutionReport, ...]
    fills: tuple[Fill, ...]
    changes: tuple[LevelChange, ...]
    top_changed: bool
