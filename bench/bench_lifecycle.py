"""What a pooled fan-out duplicate costs, next to allocating a fresh envelope.

Run with ``make bench`` or ``.venv/bin/python bench/bench_lifecycle.py [--quick]``.
It prints a table and writes the same figures to ``bench/results/lifecycle.json``.

Every timed figure is the median of several repeats, each repeat a loop of ``n``
operations timed with ``time.perf_counter_ns``; the cases are interleaved within
each repeat (case A, B, C, then A, B, C again) so drift in machine load touches them
all alike and their ratios stay comparable. The garbage collector stays enabled
throughout, as in production; ``gc.collect()`` runs between timed loops, never
inside one, so each loop starts from the same collector state.

Every loop binds what it calls and the values it passes to locals first, so the
figures are the operation itself, not global or attribute lookups around it. They
include the ``for _ in range(n)`` overhead, which is measured and shown on its own
row. The cases:

* ``fresh Event`` builds ``Event(...)`` with every field as a keyword, as users and
  parsers build one.
* ``bare attrs`` is the floor for any fresh allocation: a plain slotted attrs class
  with Event's fields (no base class, not kw_only), built positionally.
* ``minimal list pool`` is the floor for pooling: ``list.pop``, a field-by-field
  shallow copy, ``list.append``, written inline with no pool class. It does not
  reset the object on the way back (the real pool does, to drop the payload).
* ``pooled production`` is ``pool.duplicate_nowait(src)`` then ``recycler.recycle``
  with ``Recycler(debug=False)`` and a source Event carrying a Trade payload.
* ``pooled debug`` is the same with ``Recycler(debug=True)``: each recycle poisons
  and retires the object and records call sites, and each duplicate mints a fresh
  object, so it includes an allocation. It runs fewer iterations (``--debug-n``).

The GC section counts collections per generation (``gc.get_stats()`` deltas) while a
ring of live objects turns over, the way a lane holds events for a while: fresh
Events dropped as they fall out of the ring, against pooled duplicates recycled as
they fall out of it. (CPython 3.11 and 3.12 count allocations minus deallocations
toward a gen0 collection, so a ring that turns over at a steady size adds little;
the count shows what filling the ring and anything else in the loop cost.)
A second pair of workloads fills and drains in bursts, the way a fan-out burst
fills ten lanes of 1024 before their consumers drain them: there fresh envelopes
push the allocation count through every generation, pooled ones through none.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

import attrs

from meltica_trio.events import Event, Kind, Payload, Side, Trade
from meltica_trio.lifecycle import EventPool, Recycler

DEFAULT_N: Final = 1_000_000
"""Operations per timed loop in a full run."""
DEFAULT_REPEATS: Final = 7
"""Timed loops per case in a full run; the median is reported."""
DEBUG_DIVISOR: Final = 10
"""Debug mode is ~10x slower, so it runs ``n // 10`` operations per loop by default."""
DEFAULT_GC_N: Final = 1_000_000
"""Operations per GC workload in a full run."""
RING_SIZE: Final = 1024
BURST_SIZE: Final = 10_240
"""Envelopes alive at once in the burst workloads: 10 lanes x 1024."""
"""Objects a GC workload keeps alive at once, like a lane's buffer."""
QUICK_N: Final = 100_000
QUICK_REPEATS: Final = 3
QUICK_GC_N: Final = 200_000
WARMUP_N: Final = 10_000
"""Untimed operations per case before the first repeat (imports, caches, first mint)."""
RATIO_LIMIT: Final = 1.5
"""Pass criterion: production pooled within 1.5x of a fresh allocation."""
GEN2_LIMIT: Final = 1
"""Pass criterion: gen2 collections near zero for pooled (at most one)."""
RESULTS_PATH: Final = Path(__file__).resolve().parent / "results" / "lifecycle.json"

Timer = Callable[[int], int]
"""Runs ``n`` operations and returns the nanoseconds they took."""


@attrs.define(slots=True)
class BareEnvelope:
    """The floor for a fresh allocation: Event's fields, plain, slotted, positional."""

    event_id: int
    kind: Kind
    provider: str
    instrument: str
    seq: int | None
    ingest_ts: int
    emit_ts: int
    routing_version: int
    trace_id: str | None
    decision_id: str | None
    schema_version: int
    payload: Payload | None
    skipped: int


# -- the source every case copies or mirrors ---------------------------------


class EnvelopeFields(NamedTuple):
    """Event's fields as a typed tuple, so loops can unpack them into locals."""

    event_id: int
    kind: Kind
    provider: str
    instrument: str
    seq: int | None
    ingest_ts: int
    emit_ts: int
    routing_version: int
    trace_id: str | None
    decision_id: str | None
    schema_version: int
    payload: Payload | None
    skipped: int


SAMPLE: Final = EnvelopeFields(
    event_id=1,
    kind=Kind.TRADE,
    provider="binance",
    instrument="BTC-USDT",
    seq=412345678,
    ingest_ts=1_700_000_000_125_000_000,
    emit_ts=1_700_000_000_126_000_000,
    routing_version=3,
    trace_id="trace-0001",
    decision_id=None,
    schema_version=Event().schema_version,
    payload=Trade(
        price="39000.50",
        size="0.00123400",
        side=Side.BUY,
        trade_id="412345678",
        trade_ts=1_700_000_000_123_000_000,
    ),
    skipped=0,
)
"""A trade as a provider's parser would emit it: every field set, a real payload."""


def sample_event() -> Event:
    """A full Event built from :data:`SAMPLE`."""
    return Event(**SAMPLE._asdict())


def check_baseline_shape() -> int:
    """Event's field count, after making sure the baselines mirror its fields in order."""
    event_fields = [field.name for field in attrs.fields(Event)]
    bare_fields = [field.name for field in attrs.fields(BareEnvelope)]
    if not event_fields == bare_fields == list(EnvelopeFields._fields):
        sys.exit(
            "BareEnvelope/EnvelopeFields no longer mirror Event's fields; update the benchmark:\n"
            f"  Event:          {event_fields}\n"
            f"  BareEnvelope:   {bare_fields}\n"
            f"  EnvelopeFields: {list(EnvelopeFields._fields)}"
        )
    return len(event_fields)


# -- timed loops ---------------------------------------------------------------


def time_empty_loop(n: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(n):
        pass
    return time.perf_counter_ns() - start


def time_fresh_event(n: int) -> int:
    new = Event
    # fmt: off
    (event_id, kind, provider, instrument, seq, ingest_ts, emit_ts, routing_version,
     trace_id, decision_id, schema_version, payload, skipped) = SAMPLE
    # fmt: on
    start = time.perf_counter_ns()
    for _ in range(n):
        new(
            event_id=event_id,
            kind=kind,
            provider=provider,
            instrument=instrument,
            seq=seq,
            ingest_ts=ingest_ts,
            emit_ts=emit_ts,
            routing_version=routing_version,
            trace_id=trace_id,
            decision_id=decision_id,
            schema_version=schema_version,
            payload=payload,
            skipped=skipped,
        )
    return time.perf_counter_ns() - start


def time_bare_positional(n: int) -> int:
    new = BareEnvelope
    # fmt: off
    (event_id, kind, provider, instrument, seq, ingest_ts, emit_ts, routing_version,
     trace_id, decision_id, schema_version, payload, skipped) = SAMPLE
    # fmt: on
    start = time.perf_counter_ns()
    for _ in range(n):
        # fmt: off
        new(event_id, kind, provider, instrument, seq, ingest_ts, emit_ts,
            routing_version, trace_id, decision_id, schema_version, payload, skipped)
        # fmt: on
    return time.perf_counter_ns() - start


def time_minimal_list_pool(n: int) -> int:
    src = BareEnvelope(*SAMPLE)
    free = [BareEnvelope(*SAMPLE)]
    pop, push = free.pop, free.append
    start = time.perf_counter_ns()
    for _ in range(n):
        obj = pop()
        obj.event_id = src.event_id
        obj.kind = src.kind
        obj.provider = src.provider
        obj.instrument = src.instrument
        obj.seq = src.seq
        obj.ingest_ts = src.ingest_ts
        obj.emit_ts = src.emit_ts
        obj.routing_version = src.routing_version
        obj.trace_id = src.trace_id
        obj.decision_id = src.decision_id
        obj.schema_version = src.schema_version
        obj.payload = src.payload
        obj.skipped = src.skipped
        push(obj)
    return time.perf_counter_ns() - start


def pooled_timer(*, debug: bool) -> Timer:
    """A timer of ``duplicate_nowait`` + ``recycle`` against a recycler in ``debug`` mode."""
    recycler = Recycler(debug=debug)
    pool = EventPool(Event, recycler=recycler, name=f"bench-{'debug' if debug else 'prod'}")
    src = sample_event()

    def time_pooled(n: int) -> int:
        duplicate, recycle = pool.duplicate_nowait, recycler.recycle
        start = time.perf_counter_ns()
        for _ in range(n):
            recycle(duplicate(src))
        return time.perf_counter_ns() - start

    return time_pooled


# -- running cases and summarising them ---------------------------------------


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


def run_cases(cases: Sequence[Case], repeats: int) -> dict[str, Timing]:
    """Warm each case up, then time them interleaved, ``repeats`` rounds."""
    for case in cases:
        case.timer(min(WARMUP_N, case.iterations))
    samples: dict[str, list[float]] = {case.key: [] for case in cases}
    for _ in range(repeats):
        for case in cases:
            gc.collect()
            samples[case.key].append(case.timer(case.iterations) / case.iterations)
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


# -- garbage collections under a ring of live objects --------------------------


@attrs.frozen(kw_only=True)
class GcCount:
    """Collections per generation while one workload ran."""

    label: str
    operations: int
    ring: int
    gen0: int
    gen1: int
    gen2: int
    elapsed_ms: float


def churn_fresh(n: int, ring_size: int) -> None:
    """Allocate ``n`` fresh Events, each alive until ``ring_size`` newer ones exist."""
    src = sample_event()
    ring: deque[Event] = deque()
    append, popleft = ring.append, ring.popleft
    for _ in range(n):
        append(fresh_copy(src))
        if len(ring) > ring_size:
            popleft()


def churn_pooled(n: int, ring_size: int) -> None:
    """Lend ``n`` duplicates, each leased until ``ring_size`` newer ones are out."""
    recycler = Recycler(debug=False)
    pool = EventPool(Event, recycler=recycler, capacity=ring_size + 1, name="bench-gc")
    src = sample_event()
    ring: deque[Event] = deque()
    append, popleft = ring.append, ring.popleft
    duplicate, recycle = pool.duplicate_nowait, recycler.recycle
    for _ in range(n):
        append(duplicate(src))
        if len(ring) > ring_size:
            recycle(popleft())
    recycler.recycle_all(ring)


def burst_fresh(n: int, burst: int) -> None:
    """Allocate ``n`` fresh Events in bursts of ``burst`` held at once, then dropped."""
    src = sample_event()
    held: list[Event] = []
    for _ in range(n // burst):
        held.extend(fresh_copy(src) for _ in range(burst))
        held.clear()


def burst_pooled(n: int, burst: int) -> None:
    """Lend ``n`` duplicates in bursts of ``burst`` held at once, then recycled."""
    recycler = Recycler(debug=False)
    pool = EventPool(Event, recycler=recycler, capacity=burst, name="bench-gc-burst")
    src = sample_event()
    duplicate = pool.duplicate_nowait
    held: list[Event] = []
    for _ in range(n // burst):
        held.extend(duplicate(src) for _ in range(burst))
        recycler.recycle_all(held)
        held.clear()


def fresh_copy(src: Event) -> Event:
    """A fresh Event with ``src``'s fields, as a pool-less fan-out would build it."""
    return Event(
        event_id=src.event_id,
        kind=src.kind,
        provider=src.provider,
        instrument=src.instrument,
        seq=src.seq,
        ingest_ts=src.ingest_ts,
        emit_ts=src.emit_ts,
        routing_version=src.routing_version,
        trace_id=src.trace_id,
        decision_id=src.decision_id,
        schema_version=src.schema_version,
        payload=src.payload,
        skipped=src.skipped,
    )


def count_collections(
    label: str, workload: Callable[[int, int], None], n: int, size: int = RING_SIZE
) -> GcCount:
    """Run ``workload`` from a freshly collected heap and count the collections it caused."""
    gc.collect()
    before = [generation["collections"] for generation in gc.get_stats()]
    start = time.perf_counter_ns()
    workload(n, size)
    elapsed = time.perf_counter_ns() - start
    after = [generation["collections"] for generation in gc.get_stats()]
    gen0, gen1, gen2 = (b - a for a, b in zip(before, after, strict=True))
    return GcCount(
        label=label,
        operations=n,
        ring=size,
        gen0=gen0,
        gen1=gen1,
        gen2=gen2,
        elapsed_ms=elapsed / 1e6,
    )


# -- verdicts, context and output ----------------------------------------------


@attrs.frozen
class Criterion:
    """One pass criterion from the issue, with the figure it was judged on."""

    text: str
    passed: bool
    figure: str


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
        "gc_threshold": gc.get_threshold(),
    }


def format_load(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


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


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run for smoke checks")
    parser.add_argument("--n", type=positive_int, help="operations per timed loop")
    parser.add_argument("--repeats", type=positive_int, help="timed loops per case")
    parser.add_argument("--debug-n", type=positive_int, help="operations per loop in debug mode")
    parser.add_argument("--gc-n", type=positive_int, help="operations per GC workload")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="JSON results path")
    args = parser.parse_args(argv)
    args.n = args.n or (QUICK_N if args.quick else DEFAULT_N)
    args.repeats = args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    args.debug_n = args.debug_n or max(1, args.n // DEBUG_DIVISOR)
    args.gc_n = args.gc_n or (QUICK_GC_N if args.quick else DEFAULT_GC_N)
    return args


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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    fields = check_baseline_shape()
    context = machine_context() | {"load_1m_start": load_1m()}
    timings = run_cases(build_cases(args.n, args.debug_n, fields), args.repeats)
    ratios = build_ratios(timings)
    gc_counts = [
        count_collections("fresh Event, dropped off the ring", churn_fresh, args.gc_n),
        count_collections("pooled duplicate, recycled off the ring", churn_pooled, args.gc_n),
        count_collections("fresh Event, bursts of 10,240", burst_fresh, args.gc_n, BURST_SIZE),
        count_collections(
            "pooled duplicate, bursts of 10,240", burst_pooled, args.gc_n, BURST_SIZE
        ),
    ]
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
    print_report(report, timings)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
