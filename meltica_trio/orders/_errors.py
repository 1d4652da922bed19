"""Errors of the order gateway; they live in the one tree of ``meltica_trio._errors``."""

from meltica_trio._errors import (
    DuplicateOrderError,
    InvalidTransitionError,
    LedgerFullError,
    UnknownOrderError,
    VenueError,
    VenueRejectedError,
    VenueUnavailableError,
)

__all__ = [
    "DuplicateOrderError",
    "InvalidTransitionError",
    "LedgerFullError",
    "UnknownOrderError",
    "VenueError",
    "VenueRejectedError",
    "VenueUnavailableError",
]
