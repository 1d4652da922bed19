"""meltica-trio: a trio event pipeline for trading systems.

The public API is re-exported here; everything else is an implementation detail.
"""

from ._config import PipelineConfig
from ._errors import (
    ConfigError,
    ConsumerExistsError,
    DecodeError,
    DoublePutError,
    ForeignObjectError,
    LifecycleError,
    MelticaError,
    PipelineClosedError,
    PoolExhausted,
    UseAfterRecycleError,
)
from ._pipeline import Pipeline, PipelineStatistics, open_pipeline
from .bus import LaneStatistics
from .consumers import ConsumerContext, ConsumerStatistics, Handler
from .dispatcher import FanoutStatistics, OrderingStatistics, Subscription
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
from .telemetry import DeadLetter, DeadLetterStatistics, LatencySummary

__version__ = "0.1.0"

__all__ = [
    "BookDelta",
    "BookSnapshot",
    "BookState",
    "BookStatus",
    "ConfigError",
    "ConsumerContext",
    "ConsumerExistsError",
    "ConsumerStatistics",
    "ControlAck",
    "ControlResult",
    "DeadLetter",
    "DeadLetterStatistics",
    "DecodeError",
    "DeliveryClass",
    "DoublePutError",
    "Event",
    "EventPool",
    "ExecReport",
    "Exhaustion",
    "FanoutStatistics",
    "ForeignObjectError",
    "Handler",
    "Kind",
    "Kline",
    "LaneStatistics",
    "LatencySummary",
    "LeakReport",
    "Lease",
    "LifecycleError",
    "MelticaError",
    "MergedTopOfBook",
    "OrderState",
    "OrderingStatistics",
    "Pipeline",
    "PipelineClosedError",
    "PipelineConfig",
    "PipelineStatistics",
    "PoolExhausted",
    "PoolStatistics",
    "Recycler",
    "RecyclerStatistics",
    "Side",
    "Subscription",
    "Ticker",
    "Trade",
    "UseAfterRecycleError",
    "VenueTop",
    "decode_event",
    "encode_event",
    "open_pipeline",
]
