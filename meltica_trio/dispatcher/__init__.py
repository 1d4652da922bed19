"""The dispatcher: per-stream ordering, the routing table and parallel fan-out."""

from ._dispatcher import Dispatcher
from ._fanout import FanoutStatistics
from ._ordering import Orderer, OrderingStatistics
from ._routing import RoutingTable, Subscription
from ._routing_control import RoutingControl

__all__ = [
    "Dispatcher",
    "FanoutStatistics",
    "Orderer",
    "OrderingStatistics",
    "RoutingControl",
    "RoutingTable",
    "Subscription",
]
