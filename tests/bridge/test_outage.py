"""Redis stopped for a few seconds and restarted: no critical event lost, market data counted."""

from __future__ import annotations

from collections import Counter
from typing import Final

import trio
from bridge_helpers import (
    SETTLE,
    Recorder,
    bridge_config,
    publish_report,
    publish_trade,
    worker_config,
)
from conftest import RedisServer

from meltica_trio import Kind
from meltica_trio.bridge import open_bridge, open_worker
from meltica_trio.providers import Backoff
from meltica_trio.testing import assert_balanced, open_test_pipeline

OUTAGE: Final = 2.0
"""Seconds Redis stays down."""
CAPACITY: Final = 8
"""The exporter's critical buffer: smaller than what the outage brings, to show backpressure."""
QUICK: Final = Backoff(initial=0.05, maximum=0.25)


async def _until(condition: object) -> None:
    """Poll statistics that change inside I/O retry loops (no event marks them)."""
    with trio.fail_after(SETTLE):
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_redis_restart_loses_no_critical_event_and_counts_dropped_market_data(
    redis_server: RedisServer,
) -> None:
    prefix = "mt-outage"
    recorder = Recorder()
    config = bridge_config(redis_server.url, prefix, critical_capacity=CAPACITY, backoff=QUICK)
    async with (
        open_test_pipeline() as pipe,
        open_bridge(pipe, config) as bridge,
        open_worker(worker_config(redis_server.url, prefix, backoff=QUICK), recorder) as worker,
    ):
        with trio.fail_after(SETTLE):
            await bridge.wait_attached("g1")
        for n in range(1, 6):
            await publish_report(pipe, n)
            await publish_trade(pipe, n)
        await recorder.wait_for(Kind.EXEC_REPORT, 5)
        await recorder.wait_for(Kind.TRADE, 5)

        await redis_server.stop()
        for n in range(6, 26):
            await publish_report(pipe, n)
            await publish_trade(pipe, n)

        def backpressure() -> bool:
            exported = bridge.statistics().exporter
            return exported.critical_waiting == 1 and exported.market_dropped_link_down == 20

        try:
            await _until(backpressure)
        except trio.TooSlowError:
            raise AssertionError(bridge.statistics()) from None
        assert bridge.statistics().exporter.critical_buffered == CAPACITY
        assert not bridge.statistics().link.up
        for n in range(26, 31):  # the exporting consumer waits: these stay in its lane
            await publish_report(pipe, n)

        def backlog() -> int:
            lanes = pipe.statistics().lanes
            return next(lane.critical_backlog for lane in lanes if lane.consumer_id == "g1")

        await _until(lambda: backlog() >= 5)
        await trio.sleep(OUTAGE)  # the outage itself, not a wait for anything
        await redis_server.start()

        reports = await recorder.wait_for(Kind.EXEC_REPORT, 30)
        for n in range(31, 34):
            await publish_trade(pipe, n)
        trades = await recorder.wait_for(Kind.TRADE, 8)
        final = bridge.statistics()
        stats = worker.statistics()
    assert_balanced(pipe)
    counted = Counter(report.exec_id for report in reports)
    assert counted == Counter(f"x-{n}" for n in range(1, 31)), "each report exactly once"
    assert [report.exec_id for report in reports] == [f"x-{n}" for n in range(1, 31)]
    assert [t.trade_id for t in trades] == [str(n) for n in (1, 2, 3, 4, 5, 31, 32, 33)]
    assert recorder.skipped == 20  # trade 31 says how many of its stream were dropped
    assert final.exporter.market_dropped_link_down == 20
    assert final.exporter.critical_waits >= 1
    assert final.link.outages >= 1
    assert stats.link.outages >= 1
    assert stats.critical.duplicates + stats.critical.applied >= 30
