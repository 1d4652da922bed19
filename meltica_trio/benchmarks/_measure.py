"""Figures over repeats, ratios of paired runs, and what the machine was doing meanwhile.

Every benchmark family shares these: a :class:`Spread` summarises one figure over the
repeats of a case (median, range, quartiles), a :class:`Ratio` divides the medians of two
cases that ran interleaved and gives the range over paired repeats, a :class:`Stopwatch`
reads wall time, process CPU time and preemptions (a CPU-bound run with much less than a
core was sharing the machine), and :func:`machine_context` records the interpreter, the
core count and the load average next to the figures.
"""

from __future__ import annotations

import argparse
import array
import gc
import itertools
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, TypeAlias

import attrs
import orjson
import trio

import meltica_trio

Metrics = dict[str, float]
"""One run's figures, by name; repeats of a case are summarised key by key."""
Samples: TypeAlias = "array.array[int]"
"""Latencies in ns, as a handler records them.

An array, not a list: an array is not tracked by the garbage collector, so a million
samples add nothing to a collection's pause; a list's would be traversed by every
full collection and show up as milliseconds in the very latencies it holds.
"""
CDF_POINTS: Final = (0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 0.995, 0.999)
"""Fractions at which latency distributions are kept for the plots."""


def new_samples() -> Samples:
    return array.array("q")


@attrs.frozen(kw_only=True)
class Spread:
    """One figure over all repeats: median, range, quartiles and the samples."""

    median: float
    minimum: float
    maximum: float
    q1: float
    q3: float
    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        q1, q3 = (
            statistics.quantiles(samples, n=4, method="inclusive")[::2]
            if len(samples) > 1
            else (samples[0], samples[0])
        )
        return cls(
            median=statistics.median(samples),
            minimum=min(samples),
            maximum=max(samples),
            q1=q1,
            q3=q3,
            samples=tuple(samples),
        )


@attrs.frozen(kw_only=True)
class Ratio:
    """``numerator / denominator`` of medians, with the range over paired repeats."""

    of_medians: float
    lowest: float
    highest: float

    @classmethod
    def of(cls, top: Spread, bottom: Spread) -> Ratio:
        # Cases run interleaved, so repeat i of one pairs with repeat i of the other.
        paired = [
            a / b if b else float("nan") for a, b in zip(top.samples, bottom.samples, strict=True)
        ]
        return cls(
            of_medians=top.median / bottom.median if bottom.median else float("nan"),
            lowest=min(paired),
            highest=max(paired),
        )


@attrs.frozen
class Criterion:
    """One goal of the issue, with the figure it was judged on."""

    text: str
    passed: bool
    figure: str


def summarise(runs: Sequence[Metrics]) -> dict[str, Spread]:
    return {key: Spread.of([run[key] for run in runs]) for key in runs[0]}


def nearest_rank(ordered: Sequence[int], fraction: float) -> int:
    """The nearest-rank percentile of already sorted samples (0 if none)."""
    if not ordered:
        return 0
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


def cdf_key(prefix: str, fraction: float) -> str:
    return f"{prefix}_cdf_{fraction * 100:g}"


def latency_figures(prefix: str, per_consumer: Sequence[Samples]) -> Metrics:
    """Handler-measured latencies: merged percentiles, the spread of per-consumer p99s,
    and the merged distribution at :data:`CDF_POINTS` (for the plots)."""
    merged = sorted(itertools.chain.from_iterable(per_consumer))
    p99s = [nearest_rank(sorted(samples), 0.99) for samples in per_consumer]
    cdf = {cdf_key(prefix, f): float(nearest_rank(merged, f)) for f in CDF_POINTS}
    return {
        f"{prefix}_count": float(len(merged)),
        f"{prefix}_p50_ns": float(nearest_rank(merged, 0.50)),
        f"{prefix}_p99_ns": float(nearest_rank(merged, 0.99)),
        f"{prefix}_p999_ns": float(nearest_rank(merged, 0.999)),
        f"{prefix}_max_ns": float(merged[-1] if merged else 0),
        f"{prefix}_p99_max_ns": float(max(p99s)),
        f"{prefix}_p99_median_ns": float(statistics.median(p99s)),
    } | cdf


def busy_wait(seconds: float) -> None:
    """Spin on the CPU for ``seconds``: work that holds the thread, like real computation."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def involuntary_switches() -> int:
    """Times the kernel has preempted this process (to run another) so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw


@attrs.define
class Stopwatch:
    """Wall time, process CPU time and preemptions since it was made.

    On a shared machine the CPU share and the preemption count say how much of a core
    the run really had: a CPU-bound burst below ~90% was competing with other work.
    """

    wall: float = attrs.field(factory=time.perf_counter)
    cpu: float = attrs.field(factory=time.process_time)
    switches: int = attrs.field(factory=involuntary_switches)

    def read(self) -> Metrics:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "cpu_share": cpu / wall,
            "preempted": float(involuntary_switches() - self.switches),
        }


def rss_bytes() -> int:
    """Resident set size now (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load_1m() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine_context() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "trio": trio.__version__,
        "meltica_trio": meltica_trio.__version__,
        "gc_threshold": gc.get_threshold(),
        "load_1m_start": load_1m(),
    }


def context_line(context: dict[str, Any]) -> str:
    return f"Python {context['python']} ({context['implementation']}) on {context['platform']}"


# -- formatting ----------------------------------------------------------------------


def us(ns: float) -> str:
    return f"{ns / 1e3:,.1f}"


def spread(s: Spread, fmt: str) -> str:
    return f"{fmt.format(s.median)} ({fmt.format(s.minimum)}-{fmt.format(s.maximum)})"


def spread_us(s: Spread) -> str:
    return f"{us(s.median)} ({us(s.minimum)}-{us(s.maximum)})"


def format_rate(s: Spread) -> str:
    return f"{s.median / 1e6:.2f}M ({s.minimum / 1e6:.2f}-{s.maximum / 1e6:.2f})"


def format_ratio(r: Ratio) -> str:
    return f"{r.of_medians:.2f}x ({r.lowest:.2f}-{r.highest:.2f})"


def format_load(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def jsonable(value: Any) -> Any:
    """orjson's fallback: attrs instances as dicts, paths as text."""
    if attrs.has(type(value)):
        return attrs.asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def write_json(path: Path, report: object) -> None:
    """``report`` as indented JSON at ``path`` (parents created); NaN is written as null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        orjson.dumps(
            report, default=jsonable, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
        )
        + b"\n"
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def advance(args: argparse.Namespace) -> None:
    """Tell the suite's progress bar one run is done (a no-op for the scripts)."""
    callback = getattr(args, "advance", None)
    if callback is not None:
        callback()


def extras(args: argparse.Namespace) -> frozenset[str]:
    """The extra cases the suite asked for (peers, sequential baselines); none for scripts."""
    return frozenset(getattr(args, "extras", ()))
