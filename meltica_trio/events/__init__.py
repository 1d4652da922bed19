"""Canonical events: kinds, the pooled envelope, immutable payloads and the codec."""

from ._codec import decode_event, encode_event
from ._envelope import Event
from ._kind import DELIVERY_CLASS, DeliveryClass, Kind
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
    "DELIVERY_CLASS",
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
