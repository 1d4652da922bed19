"""Test kit for users of meltica-trio: Hypothesis strategies for canonical events, and
transports that run a provider without a network (:class:`FakeTransport`, scripted
frame by frame; :class:`ReplayTransport`, a capture played back).
"""

from ._transport import FakeConnection, FakeTransport, ReplayTransport
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
    "FakeConnection",
    "FakeTransport",
    "ReplayTransport",
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
