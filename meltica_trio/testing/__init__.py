"""Test kit for users of meltica-trio: Hypothesis strategies for canonical events;
more helpers arrive with the providers.
"""

from .strategies import (
    book_deltas,
    book_snapshots,
    book_statuses,
    control_acks,
    control_results,
    decimal_texts,
    events,
    exec_reports,
    klines,
    levels,
    merged_tops,
    payloads,
    tickers,
    trades,
)

__all__ = [
    "book_deltas",
    "book_snapshots",
    "book_statuses",
    "control_acks",
    "control_results",
    "decimal_texts",
    "events",
    "exec_reports",
    "klines",
    "levels",
    "merged_tops",
    "payloads",
    "tickers",
    "trades",
]
