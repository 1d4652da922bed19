"""Parallel efficiency: 10 async consumers each awaiting ``trio.sleep(5 ms)`` per event.

Efficiency is the handlers' summed time over (subscribers x wall time): 1.0 when all ten
wait at once. Baseline (``sequential``): the same handlers called one after another.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import trio

from meltica_trio import PipelineConfig, open_pipeline
from meltica_trio.benchmarks._fanout import prime, publish_burst, subscribe_all
from meltica_trio.benchmarks._measure import (
    Criterion,
    Metrics,
    advance,
    spread,
    summarise,
)
from meltica_trio.benchmarks._tape import Tape

PARALLEL_SUBSCRIBERS: Final = 10
PARALLEL_SLEEP: Final = 0.005
"""Seconds each async handler awaits per event."""
PARALLEL_EVENTS: Final = 200
QUICK_PARALLEL_EVENTS: Final = 50
PARALLEL_REPEATS: Final = 3
QUICK_PARALLEL_REPEATS: Final = 2
EFFICIENCY_GOAL: Final = 0.95


def parallel_runs(args: argparse.Namespace) -> int:
    """How many timed runs the parallel benchmark makes (for progress bars)."""
    return int(args.parallel_repeats * (1 if args.ours_only else 2))


def sleeping_handler(spent: list[int]) -> Callable[[object, object], Awaitable[None]]:
    """An async consumer that awaits PARALLEL_SLEEP per event and adds up its time."""

    async def handle(event: object, ctx: object) -> None:
        start = time.perf_counter_ns()
        await trio.sleep(PARALLEL_SLEEP)
        spent[0] += time.perf_counter_ns() - start

    return handle


def efficiency_figures(spent: Sequence[list[int]], events: int, wall: float) -> Metrics:
    total = sum(s[0] for s in spent) / 1e9
    return {
        "wall_s": wall,
        "ideal_wall_s": events * PARALLEL_SLEEP,
        "handler_mean_ms": total / (len(spent) * events) * 1e3,
        "efficiency": total / (len(spent) * wall),
    }


async def parallel_pipeline(subscribers: int, events: int, tape: Tape) -> Metrics:
    spent = [[0] for _ in range(subscribers)]
    async with open_pipeline(PipelineConfig()) as pipe:
        await prime(pipe, tape)
        await subscribe_all(pipe, tape, [sleeping_handler(s) for s in spent])
        start = time.perf_counter()
        await publish_burst(pipe, tape.cursor(), events)
        await pipe.wait_idle()
        wall = time.perf_counter() - start
    return efficiency_figures(spent, events, wall)


async def parallel_sequential(subscribers: int, events: int, tape: Tape) -> Metrics:
    spent = [[0] for _ in range(subscribers)]
    handlers = [sleeping_handler(s) for s in spent]
    start = time.perf_counter()
    for item in itertools.islice(tape.cursor(), events):
        for handle in handlers:
            await handle(item, None)
    wall = time.perf_counter() - start
    return efficiency_figures(spent, events, wall)


def bench_parallel(args: argparse.Namespace, tape: Tape) -> tuple[dict[str, Any], list[Criterion]]:
    cases: dict[str, Callable[[int, int, Tape], Awaitable[Metrics]]] = {
        "pipeline": parallel_pipeline
    }
    if not args.ours_only:
        cases["sequential"] = parallel_sequential
    runs: dict[str, list[Metrics]] = defaultdict(list)
    for _ in range(args.parallel_repeats):
        for case, fn in cases.items():
            gc.collect()
            runs[case].append(trio.run(fn, PARALLEL_SUBSCRIBERS, args.parallel_events, tape))
            advance(args)
    table = {case: summarise(runs[case]) for case in cases}
    print(
        f"[parallel] {PARALLEL_SUBSCRIBERS} async consumers x {args.parallel_events} events, "
        f"each awaiting trio.sleep({PARALLEL_SLEEP}); median of {args.parallel_repeats} (min-max)"
    )
    header = f"{'case':<12}{'wall s':>22}{'ideal s':>9}{'handler ms':>12}{'efficiency':>24}"
    print(header)
    print("-" * len(header))
    for case, s in table.items():
        wall, eff = s["wall_s"], s["efficiency"]
        print(
            f"{case:<12}{spread(wall, '{:.3f}'):>22}{s['ideal_wall_s'].median:>9.3f}"
            f"{s['handler_mean_ms'].median:>12.3f}{spread(eff, '{:.3f}'):>24}"
        )
    print("  handler ms: mean time per handler call (the sleep plus trio's timer overshoot)")
    efficiency = table["pipeline"]["efficiency"].median
    criteria = [
        Criterion(
            "parallel: efficiency >= 0.95",
            efficiency >= EFFICIENCY_GOAL,
            f"{efficiency:.3f}",
        )
    ]
    config = {
        "subscribers": PARALLEL_SUBSCRIBERS,
        "events": args.parallel_events,
        "sleep_s": PARALLEL_SLEEP,
        "repeats": args.parallel_repeats,
    }
    return {"config": config, "results": table}, criteria
