"""What a pooled fan-out duplicate costs, next to allocating a fresh envelope.

Run with ``meltica-trio bench`` (the suite), ``make bench`` or ``python
bench/bench_lifecycle.py [--quick]``; the script prints a table and writes the same
figures to ``bench/results/lifecycle.json``.

Every timed figure is the median of several repeats, each repeat a loop of ``n``
operations timed with ``time.perf_counter_ns``; the cases (:mod:`._lifecycle_loops`) are
interleaved within each repeat (case A, B, C, then A, B, C again) so drift in machine
load touches them all alike and their ratios stay comparable. The garbage collector
stays enabled throughout, as in production; ``gc.collect()`` runs between timed loops,
never inside one, so each loop starts from the same collector state. The GC section
(:mod:`._lifecycle_gc`) counts collections per generation under lane-like workloads.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from meltica_trio.benchmarks._lifecycle_gc import (
    BURST_SIZE,
    RING_SIZE,
    GcCount,
    burst_fresh,
    burst_pooled,
    churn_fresh,
    churn_pooled,
    count_collections,
)
from meltica_trio.benchmarks._lifecycle_loops import (
    Timer,
    check_baseline_shape,
    pooled_timer,
    time_bare_positional,
    time_empty_loop,
    time_fresh_event,
    time_minimal_list_pool,
)
from meltica_trio.benchmarks._measure import (
    Criterion,
    format_load,
    load_1m,
    positive_int,
    write_json,
)

DEFAULT_N: Final = 1_000_000
"""Operations per timed loop in a full run."""
DEFAULT_REPEATS: Final = 7
"""Timed loops per case in a full run; the median is reported."""
DEBUG_DIVISOR: Final = 10
"""Debug mode is ~10x slower, so it runs ``n // 10`` operations per loop by default."""
DEFAULT_GC_N: Final = 1_000_000
"""Operations per GC workload in a full run."""
QUICK_N: Final = 100_000
QUICK_REPEATS: Final = 3
QUICK_GC_N: Final = 200_000
WARMUP_N: Final = 10_000
"""Untimed operations per case before the first repeat (imports, caches, first mint)."""
RATIO_LIMIT: Final = 1.5
"""Pass criterion: production pooled within 1.5x of a fresh allocation."""
GEN2_LIMIT: Final = 1
"""Pass criterion: gen2 collections near zero for pooled (at most one)."""
GC_WORKLOADS: Final = 4


@attrs.frozen
class Case:
    """One timed operation: a key for JSON, a label for the table, how to time it."""

    key: str
    label: str
    timer: Timer
    iterations: int


@attrs.frozen(kw_only=True)
class Timing:
    """The per-operation figures of one case over all its repeats, in ns."""

    key: str
    label: str
    iterations: int
    samples: tuple[float, ...]
    median: float
    minimum: float
    maximum: float
    q1: float
    q3: float

    @classmethod
    def from_samples(cls, case: Case, samples: Sequence[float]) -> Timing:
        q1, q3 = (
            statistics.quantiles(samples, n=4, method="inclusive")[::2]
            if len(samples) > 1
            else (samples[0], samples[0])
        )
        return cls(
            key=case.key,
            label=case.label,
            iterations=case.iterations,
            samples=tuple(samples),
            median=statistics.median(samples),
            minimum=min(samples),
            maximum=max(samples),
            q1=q1,
            q3=q3,
        )


def run_cases(
    cases: Sequence[Case], repeats: int, advance: Callable[[], None] | None = None
) -> dict[str, Timing]:
    """Warm each case up, then time them interleaved, ``repeats`` rounds."""
    for case in cases:
        case.timer(min(WARMUP_N, case.iterations))
    samples: dict[str, list[float]] = {case.key: [] for case in cases}
    for _ in range(repeats):
        for case in cases:
            gc.collect()
            samples[case.key].append(case.timer(case.iterations) / case.iterations)
            if advance is not None:
                advance()
    return {case.key: Timing.from_samples(case, samples[case.key]) for case in cases}


@attrs.frozen(kw_only=True)
class Ratio:
    """``numerator / denominator`` of medians, with the range over paired repeats."""

    label: str
    numerator: str
    denominator: str
    of_medians: float
    lowest: float
    highest: float


def ratio(label: str, timings: dict[str, Timing], numerator: str, denominator: str) -> Ratio:
    top, bottom = timings[numerator], timings[denominator]
    # Cases run interleaved, so repeat i of one pairs with repeat i of the other.
    paired = [a / b for a, b in zip(top.samples, bottom.samples, strict=True)]
    return Ratio(
        label=label,
        numerator=numerator,
        denominator=denominator,
        of_medians=top.median / bottom.median,
        lowest=min(paired),
        highest=max(paired),
    )


def judge(ratios: dict[str, Ratio], pooled_gc: GcCount) -> list[Criterion]:
    within = "production pooled within 1.5x of a fresh allocation"
    criteria = [
        Criterion(
            f"{within} [{baseline}]",
            ratios[key].of_medians <= RATIO_LIMIT,
            f"{ratios[key].of_medians:.2f}x (limit {RATIO_LIMIT}x)",
        )
        for key, baseline in (
            ("pooled_vs_fresh_event", "vs fresh Event, keywords"),
            ("pooled_vs_bare_attrs", "vs bare attrs, positional"),
        )
    ]
    criteria.append(
        Criterion(
            "gen2 collections near zero for pooled",
            pooled_gc.gen2 <= GEN2_LIMIT,
            f"{pooled_gc.gen2} gen2 collection(s) (limit {GEN2_LIMIT})",
        )
    )
    return criteria


def machine_context() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "gc_threshold": gc.get_threshold(),
    }


def format_ns(value: float) -> str:
    return f"{value:,.1f}"


def print_report(report: dict[str, Any], timings: dict[str, Timing]) -> None:
    ctx = report["context"]
    cfg = report["config"]
    print("meltica-trio lifecycle benchmark")
    print(f"  Python {ctx['python']} ({ctx['implementation']}) on {ctx['platform']}")
    print(f"  CPUs: {ctx['cpu_count']}   gc thresholds: {ctx['gc_threshold']}")
    start, end = (format_load(ctx[key]) for key in ("load_1m_start", "load_1m_end"))
    print(f"  load average (1 min): {start} at start, {end} at end")
    print(
        f"  {cfg['repeats']} repeats, interleaved; median ns per operation; "
        f"Event has {cfg['event_fields']} fields"
    )
    print()
    header = f"{'case':<46}{'iters':>11}{'median':>10}{'min':>10}{'max':>10}{'IQR':>20}"
    print(header)
    print("-" * len(header))
    for t in timings.values():
        iqr = f"{format_ns(t.q1)}-{format_ns(t.q3)}"
        print(
            f"{t.label:<46}{t.iterations:>11,}{format_ns(t.median):>10}"
            f"{format_ns(t.minimum):>10}{format_ns(t.maximum):>10}{iqr:>20}"
        )
    print()
    print("ratios (of medians; range over paired repeats)")
    for r in report["ratios"].values():
        spread = f"({r['lowest']:.2f}-{r['highest']:.2f})"
        print(f"  {r['label']:<52}{r['of_medians']:>6.2f}x  {spread}")
    print()
    gc_header = f"{'GC workload':<46}"
    print(f"{gc_header}{'ops':>11}{'gen0':>8}{'gen1':>8}{'gen2':>8}{'ms':>10}")
    for g in report["gc"]:
        print(
            f"  {g['label']:<44}{g['operations']:>11,}{g['gen0']:>8}{g['gen1']:>8}"
            f"{g['gen2']:>8}{g['elapsed_ms']:>10.1f}"
        )
    print()
    for c in report["criteria"]:
        print(f"{'PASS' if c['passed'] else 'FAIL'}  {c['text']}: {c['figure']}")


# -- entry point ---------------------------------------------------------------


def parse_args(argv: Sequence[str] | None, default_json: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run for smoke checks")
    parser.add_argument("--n", type=positive_int, help="operations per timed loop")
    parser.add_argument("--repeats", type=positive_int, help="timed loops per case")
    parser.add_argument("--debug-n", type=positive_int, help="operations per loop in debug mode")
    parser.add_argument("--gc-n", type=positive_int, help="operations per GC workload")
    parser.add_argument("--output", type=Path, default=default_json, help="JSON results path")
    args = parser.parse_args(argv)
    knobs = settings(
        quick=args.quick, n=args.n, repeats=args.repeats, debug_n=args.debug_n, gc_n=args.gc_n
    )
    return argparse.Namespace(**(vars(knobs) | {"output": args.output}))


def build_cases(n: int, debug_n: int, fields: int) -> list[Case]:
    return [
        Case("empty_loop", "loop overhead (empty for-range)", time_empty_loop, n),
        Case("fresh_event", f"fresh Event, {fields} keywords", time_fresh_event, n),
        Case("bare_attrs", f"bare attrs, {fields} positional", time_bare_positional, n),
        Case("minimal_list", "minimal list pool (pop, copy, append)", time_minimal_list_pool, n),
        Case("pooled_production", "pooled dup+recycle, debug=False", pooled_timer(debug=False), n),
        Case("pooled_debug", "pooled dup+recycle, debug=True", pooled_timer(debug=True), debug_n),
    ]


def build_ratios(timings: dict[str, Timing]) -> dict[str, Ratio]:
    pairs = {
        "pooled_vs_fresh_event": ("pooled production / fresh Event (keywords)", "fresh_event"),
        "pooled_vs_bare_attrs": ("pooled production / bare attrs (positional)", "bare_attrs"),
        "pooled_vs_minimal_list": ("pooled production / minimal list pool", "minimal_list"),
    }
    ratios = {
        key: ratio(label, timings, "pooled_production", denominator)
        for key, (label, denominator) in pairs.items()
    }
    ratios["debug_vs_production"] = ratio(
        "pooled debug / pooled production", timings, "pooled_debug", "pooled_production"
    )
    return ratios


def settings(
    *,
    quick: bool,
    n: int | None = None,
    repeats: int | None = None,
    debug_n: int | None = None,
    gc_n: int | None = None,
) -> argparse.Namespace:
    """Every knob of the lifecycle benchmark, defaults filled in from ``quick``."""
    n = n or (QUICK_N if quick else DEFAULT_N)
    return argparse.Namespace(
        quick=quick,
        n=n,
        repeats=repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS),
        debug_n=debug_n or max(1, n // DEBUG_DIVISOR),
        gc_n=gc_n or (QUICK_GC_N if quick else DEFAULT_GC_N),
    )


def lifecycle_runs(args: argparse.Namespace) -> int:
    """How many timed loops the benchmark makes (for progress bars)."""
    return int(args.repeats * len(build_cases(1, 1, 0)) + GC_WORKLOADS)


def run_lifecycle(
    args: argparse.Namespace, advance: Callable[[], None] | None = None
) -> tuple[dict[str, Any], dict[str, Timing]]:
    """Time every case and count the GC workloads; the report and the timings."""
    fields = check_baseline_shape()
    context = machine_context() | {"load_1m_start": load_1m()}
    timings = run_cases(build_cases(args.n, args.debug_n, fields), args.repeats, advance)
    ratios = build_ratios(timings)
    workloads: list[tuple[str, Callable[[int, int], None], int]] = [
        ("fresh Event, dropped off the ring", churn_fresh, RING_SIZE),
        ("pooled duplicate, recycled off the ring", churn_pooled, RING_SIZE),
        ("fresh Event, bursts of 10,240", burst_fresh, BURST_SIZE),
        ("pooled duplicate, bursts of 10,240", burst_pooled, BURST_SIZE),
    ]
    gc_counts: list[GcCount] = []
    for label, workload, size in workloads:
        gc_counts.append(count_collections(label, workload, args.gc_n, size))
        if advance is not None:
            advance()
    context["load_1m_end"] = load_1m()
    report = {
        "context": context,
        "config": {
            "n": args.n,
            "debug_n": args.debug_n,
            "repeats": args.repeats,
            "gc_n": args.gc_n,
            "ring": RING_SIZE,
            "event_fields": fields,
            "quick": args.quick,
        },
        "timings_ns_per_op": {key: attrs.asdict(t) for key, t in timings.items()},
        "ratios": {key: attrs.asdict(r) for key, r in ratios.items()},
        "gc": [attrs.asdict(g) for g in gc_counts],
        "criteria": [attrs.asdict(c) for c in judge(ratios, gc_counts[3])],
    }
    return report, timings


def main(argv: Sequence[str] | None = None, *, default_json: Path) -> int:
    """The ``bench/bench_lifecycle.py`` script: run, print, write ``--output``."""
    args = parse_args(argv, default_json)
    report, timings = run_lifecycle(args)
    print_report(report, timings)
    write_json(args.output, report)
    print(f"\nwrote {args.output}")
    return 0
