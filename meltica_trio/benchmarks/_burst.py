"""Burst throughput: deliveries/s of a trivial consumer, 1 to 50 subscribers.

The publisher calls ``new_event`` then ``publish_nowait`` (``await publish`` when the
intake is full), then ``wait_idle``; each consumer counts (``count[0] += 1``). Baselines,
run interleaved with it on the same payloads:

* ``raw_each`` / ``raw_drain``: raw trio, one memory channel per subscriber, the producer
  sending each item to every channel and each consumer either ``async for``-ing (one
  checkpoint per item) or draining with ``receive_nowait`` after one ``await receive()``.
* ``nautilus`` (suite only, when installed): nautilus_trader's ``MessageBus``, each
  subscriber a handler on every instrument's topic, each payload published on its
  instrument's topic; the bus calls the handlers in turn inside ``publish``. It is the
  anchor: our deliveries/s are reported as a ratio to it.
* ``sequential`` (suite only): a plain loop calling each handler in turn, the floor
  for any synchronous bus.

Ours builds a pooled envelope per event (``new_event``); the synchronous cases hand the
payload itself to the handlers, as their buses do.
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio

from meltica_trio import PipelineConfig, Trade, open_pipeline
from meltica_trio.benchmarks._fanout import (
    INTAKE,
    RawFanout,
    consume_draining,
    consume_each,
    counting_handler,
    fanout_figures,
    prime,
    publish_burst,
    subscribe_all,
)
from meltica_trio.benchmarks._measure import (
    Criterion,
    Metrics,
    Ratio,
    Stopwatch,
    advance,
    extras,
    format_rate,
    format_ratio,
    summarise,
    us,
)
from meltica_trio.benchmarks._peers import nautilus_bus
from meltica_trio.benchmarks._tape import PROVIDER, Tape

BURST_SUBSCRIBERS: Final = (1, 5, 10, 20, 50)
BURST_CASES: Final = ("pipeline", "raw_each", "raw_drain")
PEER_CASES: Final = ("nautilus", "sequential")
"""Cases the suite adds when asked (and, for nautilus, when it is installed)."""
ANCHOR: Final = "nautilus"
CONTENDED_SHARE: Final = 0.90
"""A CPU-bound burst run with less of a core than this was sharing the machine."""
BURST_LANE: Final = 65_536
"""Lane (and raw channel) capacity in the burst: deep enough that nothing is ever dropped."""
BURST_DELIVERIES: Final = 1_000_000
"""Deliveries per timed burst run (events = deliveries / subscribers)."""
QUICK_BURST_DELIVERIES: Final = 200_000
BURST_WARMUP: Final = 0.1
"""Fraction of a burst sent, untimed, before it: it mints the pool's envelopes."""
BURST_REPEATS: Final = 5
QUICK_BURST_REPEATS: Final = 2
BURST_GOAL_SUBSCRIBERS: Final = 10
BURST_GOAL: Final = 1_000_000.0
"""Deliveries/s at 10 subscribers."""

BurstCase = Callable[[int, int, Tape], Awaitable[Metrics]]


async def burst_pipeline(subscribers: int, events: int, tape: Tape) -> Metrics:
    config = PipelineConfig(
        lane_capacity=BURST_LANE, pool_capacity=INTAKE + subscribers * BURST_LANE
    )
    async with open_pipeline(config) as pipe:
        await prime(pipe, tape)
        counters, handlers = zip(*(counting_handler() for _ in range(subscribers)), strict=True)
        await subscribe_all(pipe, tape, handlers)
        cursor = tape.cursor()
        await publish_burst(pipe, cursor, max(1, int(events * BURST_WARMUP)))
        await pipe.wait_idle()
        for count in counters:
            count[0] = 0
        gc.collect()
        watch = Stopwatch()
        await publish_burst(pipe, cursor, events)
        await pipe.wait_idle()
        timing = watch.read()
        figures = fanout_figures(pipe)
    delivered = sum(count[0] for count in counters)
    if delivered != events * subscribers or figures["lane_skipped"]:
        raise RuntimeError(f"burst lost deliveries: {delivered} != {events} x {subscribers}")
    return burst_figures(delivered, timing) | figures


async def burst_raw(subscribers: int, events: int, tape: Tape, *, drain: bool) -> Metrics:
    # The baseline sends the cursor's tuples as they are: no envelope, no pool, no stamp.
    consumer = consume_draining if drain else consume_each
    counters: list[list[int]] = []
    fanout = RawFanout([])
    async with trio.open_nursery() as nursery:
        for _ in range(subscribers):
            send, receive = trio.open_memory_channel[tuple[str, Trade, int]](BURST_LANE)
            count, handle = counting_handler()
            counters.append(count)
            fanout.sends.append(send)
            await nursery.start(consumer, receive, handle)
        gc.collect()
        watch = Stopwatch()
        try:
            for item in itertools.islice(tape.cursor(), events):
                await fanout.send(item)
        finally:
            fanout.close()
    timing = watch.read()
    delivered = sum(count[0] for count in counters)
    if delivered != events * subscribers:
        raise RuntimeError(f"raw burst lost deliveries: {delivered} != {events} x {subscribers}")
    return burst_figures(delivered, timing)


def burst_figures(delivered: int, timing: Metrics) -> Metrics:
    return timing | {
        "deliveries": float(delivered),
        "rate": delivered / timing["wall_s"],
        "rate_per_cpu_s": delivered / timing["cpu_s"],
    }


def one_arg_counter() -> tuple[list[int], Callable[[object], None]]:
    """The trivial consumer in the shape a synchronous bus calls: one argument."""
    count = [0]

    def handle(message: object) -> None:
        count[0] += 1

    return count, handle


async def burst_nautilus(subscribers: int, events: int, tape: Tape) -> Metrics:
    """nautilus_trader's MessageBus: publish each payload on its instrument's topic."""
    bus, subscribe = nautilus_bus()
    topics = {i: f"data.trades.{PROVIDER}.{i}" for i in tape.instruments}
    counters, handlers = zip(*(one_arg_counter() for _ in range(subscribers)), strict=True)
    for handler in handlers:
        for topic in topics.values():
            subscribe(topic, handler)
    publish = bus.publish
    cursor = tape.cursor()
    # The warm-up resolves every topic's subscriptions once, as a long-running bus has.
    for instrument, trade, _ in itertools.islice(cursor, max(1, int(events * BURST_WARMUP))):
        publish(topics[instrument], trade)
    for count in counters:
        count[0] = 0
    gc.collect()
    watch = Stopwatch()
    for instrument, trade, _ in itertools.islice(cursor, events):
        publish(topics[instrument], trade)
    timing = watch.read()
    delivered = sum(count[0] for count in counters)
    if delivered != events * subscribers:
        raise RuntimeError(f"nautilus burst lost deliveries: {delivered}")
    return burst_figures(delivered, timing)


async def burst_sequential(subscribers: int, events: int, tape: Tape) -> Metrics:
    """Handlers called one after another in a plain loop: no queue, no isolation."""
    counters, handlers = zip(*(counting_handler() for _ in range(subscribers)), strict=True)
    cursor = tape.cursor()
    gc.collect()
    watch = Stopwatch()
    for _, trade, _ in itertools.islice(cursor, events):
        for handle in handlers:
            handle(trade, None)
    timing = watch.read()
    delivered = sum(count[0] for count in counters)
    return burst_figures(delivered, timing)


def burst_cases(args: argparse.Namespace) -> dict[str, BurstCase]:
    cases: dict[str, BurstCase] = {"pipeline": burst_pipeline}
    if not args.ours_only:
        cases["raw_each"] = functools.partial(burst_raw, drain=False)
        cases["raw_drain"] = functools.partial(burst_raw, drain=True)
    wanted = extras(args)
    if "nautilus" in wanted:
        cases["nautilus"] = burst_nautilus
    if "sequential" in wanted:
        cases["sequential"] = burst_sequential
    return cases


def burst_runs(args: argparse.Namespace) -> int:
    """How many timed runs the burst makes (for progress bars)."""
    return int(args.burst_repeats * len(args.subscribers) * len(burst_cases(args)))


def bench_burst(args: argparse.Namespace, tape: Tape) -> tuple[dict[str, Any], list[Criterion]]:
    cases = burst_cases(args)
    runs: dict[tuple[int, str], list[Metrics]] = defaultdict(list)
    for _ in range(args.burst_repeats):
        for subscribers in args.subscribers:
            events = max(1, args.deliveries // subscribers)
            for case, fn in cases.items():
                gc.collect()
                runs[subscribers, case].append(trio.run(fn, subscribers, events, tape))
                advance(args)
    table: dict[str, Any] = {}
    for subscribers in args.subscribers:
        row: dict[str, Any] = {case: summarise(runs[subscribers, case]) for case in cases}
        for base in ("raw_each", "raw_drain", *PEER_CASES):
            if base in row:
                row[f"pipeline_vs_{base}"] = Ratio.of(row["pipeline"]["rate"], row[base]["rate"])
                row[f"pipeline_vs_{base}_per_cpu_s"] = Ratio.of(
                    row["pipeline"]["rate_per_cpu_s"], row[base]["rate_per_cpu_s"]
                )
        table[str(subscribers)] = row
    print_burst(table, args)
    criteria = []
    goal_row = table.get(str(BURST_GOAL_SUBSCRIBERS))
    if goal_row is not None:
        rate = goal_row["pipeline"]["rate"].median
        per_cpu = goal_row["pipeline"]["rate_per_cpu_s"].median
        criteria.append(
            Criterion(
                f"burst: >= 1.0M deliveries/s at N={BURST_GOAL_SUBSCRIBERS}",
                rate >= BURST_GOAL,
                f"{rate / 1e6:.2f}M/s wall clock ({per_cpu / 1e6:.2f}M per CPU-second)",
            )
        )
    config = {
        "subscribers": list(args.subscribers),
        "deliveries_per_run": args.deliveries,
        "lane_capacity": BURST_LANE,
        "intake_capacity": INTAKE,
        "repeats": args.burst_repeats,
        "warmup_fraction": BURST_WARMUP,
    }
    return {"config": config, "results": table}, criteria


def print_burst(table: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"[burst] trivial sync consumer, lane {BURST_LANE:,}; median of {args.burst_repeats} "
        "(min-max)"
    )
    print_burst_rates(table, "rate", "deliveries/s (wall clock)")
    print_burst_rates(table, "rate_per_cpu_s", "deliveries per CPU-second (the process's own)")
    shares = [
        f"N={n} {case} {row[case]['cpu_share'].minimum:.0%}"
        for n, row in table.items()
        for case in BURST_CASES
        if case in row and row[case]["cpu_share"].minimum < CONTENDED_SHARE
    ]
    if shares:
        print(f"  CONTENDED: runs with < {CONTENDED_SHARE:.0%} of a core: {', '.join(shares)};")
        print("  the machine was busy, wall-clock rates understate; per CPU-second is fairer")
    print()
    print("  pipeline internals (medians): intake->last lane and first-to-last start in us")
    header = (
        f"{'N':>6}{'to last p50':>13}{'p99':>10}{'spread p50':>12}{'p99':>10}"
        f"{'pool high':>11}{'util':>7}{'lane high':>11}{'CPU':>7}{'preempted':>11}"
    )
    print(header)
    for n, row in table.items():
        s = row["pipeline"]
        print(
            f"{n:>6}{us(s['to_last_lane_p50_ns'].median):>13}"
            f"{us(s['to_last_lane_p99_ns'].median):>10}"
            f"{us(s['start_spread_p50_ns'].median):>12}{us(s['start_spread_p99_ns'].median):>10}"
            f"{int(s['pool_high_water'].median):>11,}{s['pool_peak_utilisation'].median:>7.1%}"
            f"{int(s['lane_high_water_max'].median):>11,}{s['cpu_share'].median:>7.0%}"
            f"{int(s['preempted'].median):>11,}"
        )
    if any(case in row for row in table.values() for case in PEER_CASES):
        print_peer_rates(table)


def print_burst_rates(table: dict[str, Any], key: str, title: str) -> None:
    print(f"  {title}")
    header = (
        f"{'N':>4}{'events':>10}{'pipeline':>22}{'raw each':>22}{'raw drain':>22}"
        f"{'pipe/each':>18}{'pipe/drain':>18}"
    )
    print(header)
    print("-" * len(header))
    for n, row in table.items():
        events = int(row["pipeline"]["deliveries"].median) // int(n)
        cells = [format_rate(row[c][key]) if c in row else "-" for c in BURST_CASES]
        ratios = [
            format_ratio(Ratio.of(row["pipeline"][key], row[base][key])) if base in row else "-"
            for base in ("raw_each", "raw_drain")
        ]
        print(f"{n:>4}{events:>10,}" + "".join(f"{c:>22}" for c in cells), end="")
        print("".join(f"{r:>18}" for r in ratios))


def print_peer_rates(table: dict[str, Any]) -> None:
    print()
    print("  against synchronous buses: deliveries/s (wall clock), median (min-max)")
    header = (
        f"{'N':>4}{'pipeline':>22}{'nautilus':>22}{'sequential':>22}"
        f"{'pipe/nautilus':>18}{'pipe/sequential':>18}"
    )
    print(header)
    print("-" * len(header))
    for n, row in table.items():
        cells = [
            format_rate(row[c]["rate"]) if c in row else "-" for c in ("pipeline", *PEER_CASES)
        ]
        ratios = [
            format_ratio(row[f"pipeline_vs_{base}"]) if base in row else "-" for base in PEER_CASES
        ]
        print(f"{n:>4}" + "".join(f"{c:>22}" for c in cells), end="")
        print("".join(f"{r:>18}" for r in ratios))
