"""Paced latency: 2000 events/s to 10 and 50 subscribers on the real clock.

Ingest-to-handler-start latency comes from the pipeline's own per-consumer ``delivery``
summaries and, as a cross-check, from the handlers themselves (``time.time_ns() -
event.ingest_ts``); CPU share is process CPU time over wall time. Baseline: raw trio
channels, the same pacing (``trio.sleep_until``), an equivalent handler.
"""

from __future__ import annotations

import argparse
import gc
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio

from meltica_trio import PipelineConfig, open_pipeline
from meltica_trio.benchmarks._fanout import (
    INTAKE,
    RawFanout,
    consume_each,
    delivery_figures,
    fanout_figures,
    latency_handler,
    pace,
    pacing_figures,
    pipeline_tick,
    prime,
    raw_latency_handler,
    subscribe_all,
)
from meltica_trio.benchmarks._measure import (
    Criterion,
    Metrics,
    Stopwatch,
    advance,
    latency_figures,
    new_samples,
    spread_us,
    summarise,
    us,
)
from meltica_trio.benchmarks._tape import RawItem, Tape

PACED_RATE: Final = 2000.0
"""Events/s in the paced latency benchmark."""
PACED_SUBSCRIBERS: Final = (10, 50)
PACED_SECONDS: Final = 10.0
QUICK_PACED_SECONDS: Final = 2.0
PACED_REPEATS: Final = 3
QUICK_PACED_REPEATS: Final = 1
PACED_P99_GOAL_NS: Final = {10: 500_000, 50: 1_500_000}
CPU_GOAL: Final = 0.50
"""Share of one core (process CPU time / wall time)."""


def paced_runs(args: argparse.Namespace) -> int:
    """How many timed runs the paced benchmark makes (for progress bars)."""
    return int(args.paced_repeats * len(PACED_SUBSCRIBERS) * (1 if args.ours_only else 2))


async def paced_pipeline(subscribers: int, rate: float, duration: float, tape: Tape) -> Metrics:
    async with open_pipeline(PipelineConfig()) as pipe:
        await prime(pipe, tape)
        samples = [new_samples() for _ in range(subscribers)]
        ids = await subscribe_all(pipe, tape, [latency_handler(s) for s in samples])
        gc.collect()
        watch = Stopwatch()
        lateness = await pace(pipeline_tick(pipe, tape), rate, duration)
        await pipe.wait_idle()
        timing = watch.read()
        figures = delivery_figures(pipe, ids) | fanout_figures(pipe)
    return pacing_figures(lateness, timing) | figures | latency_figures("handler", samples)


async def paced_raw(subscribers: int, rate: float, duration: float, tape: Tape) -> Metrics:
    samples = [new_samples() for _ in range(subscribers)]
    fanout = RawFanout([])
    async with trio.open_nursery() as nursery:
        for handler in (raw_latency_handler(s) for s in samples):
            send, receive = trio.open_memory_channel[RawItem](INTAKE)
            fanout.sends.append(send)
            await nursery.start(consume_each, receive, handler)
        items = tape.raw_items()

        async def tick() -> None:
            await fanout.send(next(items))

        gc.collect()
        watch = Stopwatch()
        try:
            lateness = await pace(tick, rate, duration)
        finally:
            fanout.close()
    timing = watch.read()
    return (
        pacing_figures(lateness, timing)
        | {"producer_blocked": float(fanout.blocked)}
        | latency_figures("handler", samples)
    )


def bench_paced(args: argparse.Namespace, tape: Tape) -> tuple[dict[str, Any], list[Criterion]]:
    cases: dict[str, Callable[[int, float, float, Tape], Awaitable[Metrics]]] = {
        "pipeline": paced_pipeline
    }
    if not args.ours_only:
        cases["raw"] = paced_raw
    runs: dict[tuple[int, str], list[Metrics]] = defaultdict(list)
    for _ in range(args.paced_repeats):
        for subscribers in PACED_SUBSCRIBERS:
            for case, fn in cases.items():
                gc.collect()
                run = trio.run(fn, subscribers, PACED_RATE, args.duration, tape)
                runs[subscribers, case].append(run)
                advance(args)
    table = {str(n): {case: summarise(runs[n, case]) for case in cases} for n in PACED_SUBSCRIBERS}
    print_paced(table, args)
    criteria = []
    for n in PACED_SUBSCRIBERS:
        s = table[str(n)]["pipeline"]
        p99, goal = s["pipe_p99_max_ns"].median, PACED_P99_GOAL_NS[n]
        criteria.append(
            Criterion(
                f"paced: p99 intake->start <= {goal / 1e6:g} ms at N={n} (worst consumer)",
                p99 <= goal,
                f"{p99 / 1e6:.3f} ms (median consumer {s['pipe_p99_median_ns'].median / 1e6:.3f})",
            )
        )
        cpu = s["cpu_share"].median
        criteria.append(
            Criterion(f"paced: CPU <= 50% of a core at N={n}", cpu <= CPU_GOAL, f"{cpu:.1%}")
        )
    config = {
        "rate": PACED_RATE,
        "subscribers": list(PACED_SUBSCRIBERS),
        "seconds": args.duration,
        "repeats": args.paced_repeats,
        "pipeline_config": "defaults",
    }
    return {"config": config, "results": table}, criteria


def print_paced(table: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"[paced] {PACED_RATE:g} events/s for {args.duration:g} s, intake->handler start in us; "
        f"median of {args.paced_repeats} (min-max)"
    )
    header = (
        f"{'N':>4} {'case':<9}{'p50':>8}{'p99 med':>10}{'p99 max':>24}{'p99.9 max':>11}"
        f"{'max':>10}  {'handler p50/p99/p99.9/max':<31}{'CPU':>16}{'rate/s':>8}"
        f"{'late p99':>11}{'preempt':>9}"
    )
    print(header)
    print("-" * len(header))
    for n, row in table.items():
        for case, s in row.items():
            if case == "pipeline":
                pipe_cells = (
                    f"{us(s['pipe_p50_median_ns'].median):>8}"
                    f"{us(s['pipe_p99_median_ns'].median):>10}"
                    f"{spread_us(s['pipe_p99_max_ns']):>24}"
                    f"{us(s['pipe_p999_max_ns'].median):>11}{us(s['pipe_max_ns'].median):>10}"
                )
            else:
                pipe_cells = f"{'-':>8}{'-':>10}{'-':>24}{'-':>11}{'-':>10}"
            handler = "/".join(
                us(s[f"handler_{k}"].median) for k in ("p50_ns", "p99_ns", "p999_ns", "max_ns")
            )
            cpu = s["cpu_share"]
            cpu_cell = f"{cpu.median:.1%} ({cpu.minimum:.0%}-{cpu.maximum:.0%})"
            print(
                f"{n:>4} {case:<9}{pipe_cells}  {handler:<31}{cpu_cell:>16}"
                f"{s['rate'].median:>8,.0f}{us(s['wake_late_p99_ns'].median):>11}"
                f"{int(s['preempted'].median):>9,}"
            )
    print("  p50, p99 med: median over consumers; p99 max, p99.9 max, max: worst consumer")
    print("  (pipeline histograms: bucket upper bounds, ~6% resolution); rate: achieved events/s;")
    print("  late p99: how late the publisher woke; events are stamped when published, so a")
    print("  late wake-up (a busy loop) shows here, not in the latencies; preempt: times the")
    print("  kernel ran another process instead (a busy machine)")
