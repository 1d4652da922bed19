"""The Data Bus: one delivery-class-aware lane per subscriber."""

from ._lane import Lane, LaneStatistics

__all__ = ["Lane", "LaneStatistics"]
