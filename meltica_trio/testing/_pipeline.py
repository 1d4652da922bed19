"""Pipelines for tests: debug mode, a deterministic wall clock, and the lease balance check."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

from meltica_trio._config import PipelineConfig
from meltica_trio._pipeline import Pipeline, open_pipeline
from meltica_trio.orders import OrderLedger, VenueOrderClient

_EPOCH_NS: Final = 1_700_000_000_000_000_000


class StepClock:
    """A fake wall clock in ns that moves 1 us per read.

    Strictly increasing, so streams without a sequence (ordered by ``ingest_ts``)
    never see a tie or a step back, and timestamps in assertions are predictable.
    """

    def __init__(self, start_ns: int = _EPOCH_NS, step_ns: int = 1_000) -> None:
        self.now = start_ns
        self.step = step_ns

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def open_test_pipeline(
    config: PipelineConfig | None = None,
    *,
    order_clients: Iterable[VenueOrderClient] = (),
    order_ledger: OrderLedger | None = None,
    **overrides: Any,
) -> AbstractAsyncContextManager[Pipeline]:
    """``open_pipeline`` for tests: debug mode (poisoned envelopes) and a :class:`StepClock`.

    Args:
        config: the settings; ``PipelineConfig(debug=True, **overrides)`` when None.
        order_clients: venues the order gateway may use.
        order_ledger: the gateway's idempotency ledger (in memory if None).
        overrides: fields of the default test config (ignored when ``config`` is given).
    """
    return open_pipeline(
        config or PipelineConfig(debug=True, **overrides),
        wall_clock=StepClock(),
        order_clients=order_clients,
        order_ledger=order_ledger,
    )


def assert_balanced(pipe: Pipeline) -> None:
    """Fail unless every envelope the pipeline lent has come back, exactly once.

    Call it after the ``async with`` block: the leak report is empty, nothing is
    in use (pooled or heap), every acquire was matched by a recycle, and no
    double put was refused.
    """
    report = pipe.recycler.leak_report()
    assert not report, str(report)
    stats = pipe.pool.statistics()
    assert (stats.in_use, stats.heap_in_use) == (0, 0), stats
    assert stats.acquired == stats.recycled, stats
    assert pipe.recycler.statistics().double_puts == 0
