"""The buses: data lanes per subscriber (delivery classes) and the control bus."""

from ._commands import (
    CancelOrder,
    Command,
    ConfigureMerge,
    FlipRouting,
    QueryOrder,
    SetTradingSwitch,
    StageRouting,
    SubmitOrder,
    Subscribe,
    SubscribeMerged,
    Unsubscribe,
    instrument_problem,
)
from ._control import CommandOwner, ControlBus, ControlReply, ControlStatistics, Outcome
from ._lane import Lane, LaneStatistics

__all__ = [
    "CancelOrder",
    "Command",
    "CommandOwner",
    "ConfigureMerge",
    "ControlBus",
    "ControlReply",
    "ControlStatistics",
    "FlipRouting",
    "Lane",
    "LaneStatistics",
    "Outcome",
    "QueryOrder",
    "SetTradingSwitch",
    "StageRouting",
    "SubmitOrder",
    "Subscribe",
    "SubscribeMerged",
    "Unsubscribe",
    "instrument_problem",
]
