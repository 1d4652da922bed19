"""meltica-trio: a trio event pipeline for trading systems.

The public API is re-exported here; everything else is an implementation detail.
"""

from ._errors import (
    DecodeError,
    DoublePutError,
    ForeignObjectError,
    LifecycleError,
    MelticaError,
    PoolExhausted,
    UseAfterRecycleError,
)
from .events import (
    BookDelta,
    BookSnapshot,
    BookState,
    BookStatus,
    ControlAck,
    ControlResult,
    DeliveryClass,
    Event,
    ExecReport,
    Kind,
    Kline,
    MergedTopOfBook,
    OrderState,
    Side,
    Ticker,
    Trade,
    VenueTop,
    decode_event,
    encode_event,
)
from .lifecycle import (
    EventPool,
    Exhaustion,
    LeakReport,
    Lease,
    PoolStatistics,
    Recycler,
    RecyclerStatistics,
)

__version__ = "0.1.0"

__all__ = [
    "BookDelta",
    "BookSnapshot",
    "BookState",
    "BookStatus",
    "ControlAck",
    "ControlResult",
    "DecodeError",
    "DeliveryClass",
    "DoublePutError",
    "Event",
    "EventPool",
    "ExecReport",
    "Exhaustion",
    "ForeignObjectError",
    "Kind",
    "Kline",
    "LeakReport",
    "Lease",
    "LifecycleError",
    "MelticaError",
    "MergedTopOfBook",
    "OrderState",
    "PoolExhausted",
    "PoolStatistics",
    "Recycler",
    "RecyclerStatistics",
    "Side",
    "Ticker",
    "Trade",
    "UseAfterRecycleError",
    "VenueTop",
    "decode_event",
    "encode_event",
]
