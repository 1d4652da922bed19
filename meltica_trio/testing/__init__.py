"""Test kit for users of meltica-trio, the same one its own tests use.

- Pipelines for tests: :func:`open_test_pipeline` (debug mode, a deterministic
  :class:`StepClock`) and :func:`assert_balanced` (every lease came back, once).
- Transports that run a provider without a network: :class:`FakeTransport`,
  scripted frame by frame, and :class:`ReplayTransport`, a capture played back.
- Hypothesis strategies for every canonical event and payload.
"""

from ._pipeline import StepClock, assert_balanced, open_test_pipeline
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
    "StepClock",
    "assert_balanced",
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
    "open_test_pipeline",
    "payloads",
    "tickers",
    "trades",
]
