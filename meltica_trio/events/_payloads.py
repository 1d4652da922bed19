"""Immutable payloads, one class per event kind.

Prices and sizes are exact decimals carried as the strings the venue wrote
(``"0.00123400"`` stays ``"0.00123400"``), never floats: nothing is lost, a venue
checksum can be recomputed from them, and ``decimal.Decimal(level.price)`` is one
call away. Collections are tuples, so a payload shared by many fan-out duplicates
cannot be changed by any of its readers.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Final, TypeAlias

import attrs

from ._kind import Kind


class _ExactDecimal:
    """Marker in ``Annotated``: the string must be a finite decimal number."""

    def __repr__(self) -> str:
        return "exact decimal"


EXACT_DECIMAL: Final = _ExactDecimal()

DecimalText: TypeAlias = Annotated[str, EXACT_DECIMAL]
"""An exact decimal number as text, e.g. ``"39000.5"`` or ``"0.00123400"``."""

Level: TypeAlias = tuple[DecimalText, DecimalText]
"""One price level: ``(price, size)``."""


class Side(enum.StrEnum):
    """Aggressor side of a trade, or side of an order."""

    BUY = "buy"
    SELL = "sell"


class OrderState(enum.StrEnum):
    """States of an order's life (the state machine lives in the order gateway)."""

    NEW = "new"
    ACK = "ack"
    PARTIAL = "partial"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class BookState(enum.StrEnum):
    """State of one (provider, instrument) order book; see DESIGN.md section 7."""

    SYNCING = "syncing"
    LIVE = "live"
    RESYNCING = "resyncing"
    STALE = "stale"


@attrs.frozen(kw_only=True)
class Trade:
    """One public trade. ``trade_ts`` is the venue's trade time in ns since the epoch."""

    price: DecimalText
    size: DecimalText
    side: Side
    trade_id: str
    trade_ts: int


@attrs.frozen(kw_only=True)
class BookSnapshot:
    """A full book (or its top N levels); bids best first (highest), asks best first."""

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    checksum: int | None = None


@attrs.frozen(kw_only=True)
class BookDelta:
    """Changes to a book: a level of size ``"0"`` is removed.

    The envelope's ``seq`` is the sequence after this delta; ``prev_seq`` the one it
    follows (Binance ``U - 1``, OKX ``prevSeqId``), so continuity is ``prev_seq``
    equal to the last applied ``seq``. ``None`` where the venue gives no sequence.
    """

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    prev_seq: int | None = None
    checksum: int | None = None


@attrs.frozen(kw_only=True)
class Ticker:
    """Best bid and offer, with the last trade price where the venue sends it."""

    bid_price: DecimalText
    bid_size: DecimalText
    ask_price: DecimalText
    ask_size: DecimalText
    last_price: DecimalText | None = None


@attrs.frozen(kw_only=True)
class Kline:
    """One candle; ``closed`` is False while the interval is still running."""

    interval: str
    open_ts: int
    close_ts: int
    open: DecimalText
    high: DecimalText
    low: DecimalText
    close: DecimalText
    volume: DecimalText
    closed: bool


@attrs.frozen(kw_only=True)
class VenueTop:
    """One venue's top of book inside a merged view; ``None`` for an empty side."""

    provider: str
    bid: Level | None
    ask: Level | None


@attrs.frozen(kw_only=True)
class MergedTopOfBook:
    """A consolidated top of book across venues, built from one complete merge window."""

    best_bid: Level | None
    best_bid_provider: str | None
    best_ask: Level | None
    best_ask_provider: str | None
    venues: tuple[VenueTop, ...]


@attrs.frozen(kw_only=True)
class ExecReport:
    """One transition of an order, with a unique ``exec_id`` per transition.

    ``filled + remaining == quantity`` holds for every report the gateway emits.
    """

    exec_id: str
    consumer_id: str
    client_order_id: str
    venue_order_id: str | None
    side: Side
    price: DecimalText | None
    quantity: DecimalText
    state: OrderState
    filled: DecimalText
    remaining: DecimalText
    last_fill_price: DecimalText | None = None
    last_fill_size: DecimalText | None = None
    reason: str | None = None


@attrs.frozen(kw_only=True)
class ControlAck:
    """First answer to a command: accepted or refused (with why)."""

    command_id: str
    command: str
    accepted: bool
    reason: str | None
    routing_version: int


@attrs.frozen(kw_only=True)
class ControlResult:
    """Final answer to a command; ``detail`` carries outcome facts as text pairs."""

    command_id: str
    command: str
    ok: bool
    reason: str | None
    detail: tuple[tuple[str, str], ...] = ()


@attrs.frozen(kw_only=True)
class BookStatus:
    """A book's state changed; ``last_seq`` is the last sequence applied, if any."""

    state: BookState
    reason: str | None
    last_seq: int | None = None


Payload: TypeAlias = (
    Trade
    | BookSnapshot
    | BookDelta
    | Ticker
    | Kline
    | MergedTopOfBook
    | ExecReport
    | ControlAck
    | ControlResult
    | BookStatus
)
"""Any payload class; an event's ``kind`` says which one (see ``PAYLOAD_TYPE``)."""

PAYLOAD_TYPE: Final[Mapping[Kind, type[Payload]]] = MappingProxyType(
    {
        Kind.TRADE: Trade,
        Kind.BOOK_SNAPSHOT: BookSnapshot,
        Kind.BOOK_DELTA: BookDelta,
        Kind.TICKER: Ticker,
        Kind.KLINE: Kline,
        Kind.MERGED: MergedTopOfBook,
        Kind.EXEC_REPORT: ExecReport,
        Kind.CONTROL_ACK: ControlAck,
        Kind.CONTROL_RESULT: ControlResult,
        Kind.BOOK_STATUS: BookStatus,
    }
)
"""The payload class of each kind."""
