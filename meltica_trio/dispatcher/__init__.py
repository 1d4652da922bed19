"""The dispatcher: per-stream ordering, the routing table and parallel fan-out."""

from ._dispatcher import Dispatcher
from ._fanout import FanoutStatistics
from ._ordering import Orderer, OrderingStatistics
from ._routing import RoutingTable, Subscription

__all__ = [
    "Dispatcher",
    "FanoutStatistics",
    "Orderer",
    "OrderingStatistics",
    "RoutingTable",
    "Subscription",
]
