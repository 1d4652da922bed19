"""A live terminal dashboard of a running pipeline, drawn with rich."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs
import trio
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from meltica_trio._pipeline import Pipeline, PipelineStatistics

Extra = Callable[[], Mapping[str, Mapping[str, str]]]
"""More panels: title -> rows of (label -> value), e.g. book status, orders."""


@attrs.frozen
class _Rates:
    events: float
    deliveries: float


def _rates(now: PipelineStatistics, before: PipelineStatistics | None, seconds: float) -> _Rates:
    if before is None or seconds <= 0:
        return _Rates(0.0, 0.0)
    return _Rates(
        (now.fanout.events - before.fanout.events) / seconds,
        (now.fanout.deliveries - before.fanout.deliveries) / seconds,
    )


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.3f}"


def _overview(stats: PipelineStatistics, rates: _Rates) -> Table:
    table = Table(title="pipeline", show_header=False, expand=True)
    p99s = sorted(c.delivery.p99_ns for c in stats.consumers) or [0]
    rows = {
        "events/s": f"{rates.events:,.0f}",
        "deliveries/s": f"{rates.deliveries:,.0f}",
        "intake -> last lane p50 / p99 ms": (
            f"{_ms(stats.fanout.to_last_lane.p50_ns)} / {_ms(stats.fanout.to_last_lane.p99_ns)}"
        ),
        "ingest -> handler p99 ms (median consumer)": _ms(p99s[len(p99s) // 2]),
        "pool in use / high water / capacity": (
            f"{stats.pool.in_use:,} / {stats.pool.high_water:,} / {stats.pool.capacity:,}"
        ),
        "routing version": str(stats.routing_version),
        "DLQ entries": str(stats.dlq.recorded),
    }
    for label, value in rows.items():
        table.add_row(label, value)
    return table


def _lanes(stats: PipelineStatistics) -> Table:
    table = Table(title="consumers", expand=True)
    for column in ("consumer", "handled", "failed", "p99 ms", "depth", "coalesced", "skipped"):
        table.add_column(column, justify="right" if column != "consumer" else "left")
    lanes = {lane.consumer_id: lane for lane in stats.lanes}
    for consumer in stats.consumers:
        lane = lanes[consumer.consumer_id]
        table.add_row(
            consumer.consumer_id,
            f"{consumer.handled:,}",
            f"{consumer.failed:,}",
            _ms(consumer.delivery.p99_ns),
            f"{lane.depth:,}",
            f"{lane.coalesced:,}",
            f"{lane.skipped:,}",
        )
    return table


def _panel(title: str, rows: Mapping[str, str]) -> Table:
    table = Table(title=title, show_header=False, expand=True)
    for label, value in rows.items():
        table.add_row(label, value)
    return table


def render(
    stats: PipelineStatistics,
    before: PipelineStatistics | None,
    seconds: float,
    extra: Mapping[str, Mapping[str, str]],
) -> Group:
    """The dashboard for one snapshot (``before`` is the previous one, for rates)."""
    panels = [_overview(stats, _rates(stats, before, seconds)), _lanes(stats)]
    panels.extend(_panel(title, rows) for title, rows in extra.items())
    return Group(*panels)


async def run_dashboard(
    pipe: Pipeline,
    *,
    interval: float = 0.5,
    extra: Extra | None = None,
    console: Console | None = None,
) -> None:
    """Redraw the dashboard every ``interval`` seconds until cancelled.

    The terminal write happens in the trio task: a few kilobytes twice a second,
    far below anything that could delay the pipeline.

    Cancellation:
        The usual way to stop it; the last frame stays on the terminal.
    """
    before: PipelineStatistics | None = None
    last = trio.current_time()
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            await trio.sleep(interval)
            now = trio.current_time()
            stats = pipe.statistics()
            panels = extra() if extra is not None else {}
            live.update(render(stats, before, now - last, panels), refresh=True)
            before, last = stats, now
