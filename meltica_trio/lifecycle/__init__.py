"""Pools, leases and the Recycler: how event objects are lent, reused and taken back."""

from ._pool import EventPool, Exhaustion, Lease, PoolStatistics
from ._pooled import Pooled
from ._recycler import LeakReport, Recycler, RecyclerStatistics

__all__ = [
    "EventPool",
    "Exhaustion",
    "LeakReport",
    "Lease",
    "PoolStatistics",
    "Pooled",
    "Recycler",
    "RecyclerStatistics",
]
