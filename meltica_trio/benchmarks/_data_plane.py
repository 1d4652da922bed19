"""The data-plane benchmarks: the whole pipeline next to raw trio doing the same fan-out.

Run with ``meltica-trio bench`` (the suite) or ``python bench/bench_pipeline.py [--quick]
[--only NAME]`` (this family alone). The script prints a table per benchmark, PASS/FAIL
lines against the goals of the data-plane issue (informational: it always exits 0) and
writes every figure to ``bench/results/pipeline.json``.

Method, as in the lifecycle benchmark: every case of a benchmark runs in each repeat, the
cases interleaved (pipeline, raw each, raw drain, then again), each run in a fresh
``trio.run`` after a ``gc.collect()``; the garbage collector stays enabled throughout.
Figures are medians over repeats with min-max (and the IQR in the JSON); ratios are of
medians, with the range over paired repeats. The 1-minute load average is recorded before
and after each benchmark.

The benchmarks, one module each: ``burst`` (:mod:`._burst`), ``paced`` (:mod:`._paced`),
``parallel`` (:mod:`._parallel`), ``isolation`` (:mod:`._isolation`) and ``memory``
(:mod:`._memory`).

Every run also records its CPU share (process CPU time / wall time) and how often the
kernel preempted it: a CPU-bound burst that got much less than a whole core was sharing
the machine, and the table says so. Deliveries per CPU-second are reported next to
deliveries/s because they hold up far better on a busy machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from meltica_trio.benchmarks._burst import (
    BURST_DELIVERIES,
    BURST_REPEATS,
    BURST_SUBSCRIBERS,
    QUICK_BURST_DELIVERIES,
    QUICK_BURST_REPEATS,
    bench_burst,
    burst_runs,
)
from meltica_trio.benchmarks._isolation import bench_isolation, isolation_runs
from meltica_trio.benchmarks._measure import (
    Criterion,
    format_load,
    load_1m,
    machine_context,
    positive_int,
    write_json,
)
from meltica_trio.benchmarks._memory import (
    MEMORY_DELIVERIES,
    QUICK_MEMORY_DELIVERIES,
    bench_memory,
    memory_runs,
)
from meltica_trio.benchmarks._paced import (
    PACED_REPEATS,
    PACED_SECONDS,
    QUICK_PACED_REPEATS,
    QUICK_PACED_SECONDS,
    bench_paced,
    paced_runs,
)
from meltica_trio.benchmarks._parallel import (
    PARALLEL_EVENTS,
    PARALLEL_REPEATS,
    QUICK_PARALLEL_EVENTS,
    QUICK_PARALLEL_REPEATS,
    bench_parallel,
    parallel_runs,
)
from meltica_trio.benchmarks._tape import BINANCE_CAPTURE, Tape, find_fixtures

BENCHMARKS: Final = ("burst", "paced", "parallel", "isolation", "memory")
Runner = Callable[[argparse.Namespace, Tape], tuple[dict[str, Any], list[Criterion]]]
RUNNERS: Final[dict[str, Runner]] = {
    "burst": bench_burst,
    "paced": bench_paced,
    "parallel": bench_parallel,
    "isolation": bench_isolation,
    "memory": bench_memory,
}
RUN_COUNTS: Final[dict[str, Callable[[argparse.Namespace], int]]] = {
    "burst": burst_runs,
    "paced": paced_runs,
    "parallel": parallel_runs,
    "isolation": isolation_runs,
    "memory": memory_runs,
}
"""How many runs each benchmark makes with given settings (for progress bars)."""


def subscriber_list(text: str) -> tuple[int, ...]:
    return tuple(positive_int(part) for part in text.split(","))


def settings(
    *,
    quick: bool,
    repeats: int | None = None,
    duration: float | None = None,
    deliveries: int | None = None,
    memory_deliveries: int | None = None,
    subscribers: tuple[int, ...] | None = None,
    parallel_events: int | None = None,
    ours_only: bool = False,
) -> argparse.Namespace:
    """Every knob of the data-plane benchmarks, defaults filled in from ``quick``."""
    return argparse.Namespace(
        quick=quick,
        ours_only=ours_only,
        duration=duration or (QUICK_PACED_SECONDS if quick else PACED_SECONDS),
        deliveries=deliveries or (QUICK_BURST_DELIVERIES if quick else BURST_DELIVERIES),
        memory_deliveries=memory_deliveries
        or (QUICK_MEMORY_DELIVERIES if quick else MEMORY_DELIVERIES),
        subscribers=subscribers or BURST_SUBSCRIBERS,
        burst_repeats=repeats or (QUICK_BURST_REPEATS if quick else BURST_REPEATS),
        paced_repeats=repeats or (QUICK_PACED_REPEATS if quick else PACED_REPEATS),
        parallel_repeats=repeats or (QUICK_PARALLEL_REPEATS if quick else PARALLEL_REPEATS),
        parallel_events=parallel_events or (QUICK_PARALLEL_EVENTS if quick else PARALLEL_EVENTS),
    )


def parse_args(argv: Sequence[str] | None, default_json: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run (under a minute)")
    parser.add_argument("--only", choices=BENCHMARKS, help="run one benchmark")
    parser.add_argument("--json", type=Path, default=default_json, help="JSON results path")
    parser.add_argument("--repeats", type=positive_int, help="repeats of every benchmark")
    parser.add_argument("--duration", type=float, help="seconds per paced run")
    parser.add_argument("--deliveries", type=positive_int, help="deliveries per burst run")
    parser.add_argument("--memory-deliveries", type=positive_int, help="memory run size")
    parser.add_argument("--subscribers", type=subscriber_list, help="burst N values, 1,5,10")
    parser.add_argument(
        "--ours-only", action="store_true", help="skip the baselines (for profiling only)"
    )
    args = parser.parse_args(argv)
    knobs = settings(
        quick=args.quick,
        repeats=args.repeats,
        duration=args.duration,
        deliveries=args.deliveries,
        memory_deliveries=args.memory_deliveries,
        subscribers=args.subscribers,
        ours_only=args.ours_only,
    )
    return argparse.Namespace(**(vars(knobs) | {"only": args.only, "json": args.json}))


def run_one(name: str, args: argparse.Namespace, tape: Tape) -> dict[str, Any]:
    """One benchmark, with the load average around it and its criteria."""
    before, started = load_1m(), time.perf_counter()
    result, judged = RUNNERS[name](args, tape)
    after = load_1m()
    result |= {
        "load_1m_start": before,
        "load_1m_end": after,
        "elapsed_s": time.perf_counter() - started,
        "criteria": judged,
    }
    print(
        f"  load average {format_load(before)} before, {format_load(after)} after; "
        f"{result['elapsed_s']:.0f} s\n"
    )
    return result


def main(argv: Sequence[str] | None = None, *, default_json: Path) -> int:
    """The ``bench/bench_pipeline.py`` script: run, print, write ``--json``; exits 0."""
    args = parse_args(argv, default_json)
    fixture = find_fixtures() / BINANCE_CAPTURE
    tape = Tape.from_capture(fixture)
    context = machine_context()
    print("meltica-trio pipeline benchmark")
    print(f"  Python {context['python']} ({context['implementation']}) on {context['platform']}")
    print(
        f"  CPUs: {context['cpu_count']}   trio {context['trio']}   "
        f"{'quick' if args.quick else 'full'} run"
    )
    print(
        f"  input: {len(tape.trades)} aggTrade payload(s) from {fixture.name}, "
        f"instruments {', '.join(tape.instruments)}, cycled"
    )
    print(f"  load average (1 min) at start: {format_load(context['load_1m_start'])}\n")
    results: dict[str, Any] = {}
    criteria: list[Criterion] = []
    for name in (args.only,) if args.only else BENCHMARKS:
        results[name] = run_one(name, args, tape)
        criteria += results[name]["criteria"]
    context["load_1m_end"] = load_1m()
    print(f"load average (1 min): {format_load(context['load_1m_start'])} at start, ", end="")
    print(f"{format_load(context['load_1m_end'])} at end")
    for c in criteria:
        print(f"{'PASS' if c.passed else 'FAIL'}  {c.text}: {c.figure}")
    report: dict[str, Any] = {
        "context": context,
        "config": vars(args) | {"json": str(args.json)},
        "benchmarks": results,
        "criteria": criteria,
    }
    write_json(args.json, report)
    print(f"\nwrote {args.json}")
    return 0
