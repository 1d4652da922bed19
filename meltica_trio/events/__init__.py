"""Canonical events: kinds, the pooled envelope, immutable payloads and the codec."""

from ._codec import decode_event, encode_event
from ._envelope import Event
from ._kind import CRITICAL_KINDS, DELIVERY_CLASS, LATEST_KINDS, DeliveryClass, Kind
from ._payloads import (
    PAYLOAD_TYPE,
    BookDelta,
    BookSnapshot,
    BookState,
    BookStatus,
    ControlAck,
    ControlResult,
    DecimalText,
    ExecReport,
    Kline,
    Level,
    MergedTopOfBook,
    OrderState,
    Payload,
    Side,
    Ticker,
    Trade,
    VenueTop,
)

__all__ = [
    "CRITICAL_KINDS",
    "DELIVERY_CLASS",
    "LATEST_KINDS",
    "PAYLOAD_TYPE",
    "BookDelta",
    "BookSnapshot",
    "BookState",
    "BookStatus",
    "ControlAck",
    "ControlResult",
    "DecimalText",
    "DeliveryClass",
    "Event",
    "ExecReport",
    "Kind",
    "Kline",
    "Level",
    "MergedTopOfBook",
    "OrderState",
    "Payload",
    "Side",
    "Ticker",
    "Trade",
    "VenueTop",
    "decode_event",
    "encode_event",
]
