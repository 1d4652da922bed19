"""Memory: millions of deliveries to 10 subscribers in lane-sized bursts.

RSS, allocated blocks and GC-tracked objects after a warm-up and at the end; pool high
water with the pool sized from the lanes; then pool utilisation under a paced load. One
run (growth within one process is the figure), so no spread. The soak
(:mod:`meltica_trio.benchmarks._soak`) drives the same load through
:func:`memory_bursts`, sampling as it goes.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, Final

import trio

from meltica_trio import Pipeline, PipelineConfig, open_pipeline
from meltica_trio.benchmarks._fanout import (
    INTAKE,
    counting_handler,
    pace,
    pipeline_tick,
    prime,
    publish_burst,
    subscribe_all,
)
from meltica_trio.benchmarks._measure import Criterion, Metrics, advance, rss_bytes
from meltica_trio.benchmarks._tape import Tape

MEMORY_SUBSCRIBERS: Final = 10
MEMORY_LANE: Final = 256
MEMORY_DELIVERIES: Final = 10_000_000
QUICK_MEMORY_DELIVERIES: Final = 1_000_000
MEMORY_WARMUP: Final = 0.1
MEMORY_RATE: Final = 1000.0
RSS_GROWTH_GOAL: Final = 1 << 20
POOL_UTILISATION_GOAL: Final = 0.80

BurstHook = Callable[[Pipeline, int], None]
"""Called after each burst is published, before it is drained: (pipeline, events sent)."""


def memory_runs(args: argparse.Namespace) -> int:
    """How many runs the memory benchmark makes (for progress bars)."""
    return 2


def memory_config() -> PipelineConfig:
    return PipelineConfig(
        lane_capacity=MEMORY_LANE,
        pool_capacity=INTAKE + MEMORY_SUBSCRIBERS * MEMORY_LANE * 2,
    )


def heap_figures(prefix: str) -> Metrics:
    gc.collect()
    blocks = sys.getallocatedblocks()
    return {
        f"{prefix}_rss_bytes": float(rss_bytes()),
        f"{prefix}_allocated_blocks": float(blocks),
        f"{prefix}_gc_objects": float(len(gc.get_objects())),
    }


async def memory_bursts(
    deliveries: int, tape: Tape, *, on_burst: BurstHook | None = None
) -> Metrics:
    """``deliveries`` to the subscribers; ``on_burst`` sees each burst in flight."""
    # Bursts of one lane's worth, each drained before the next, so no lane ever drops.
    events = deliveries // MEMORY_SUBSCRIBERS
    sent = 0
    async with open_pipeline(memory_config()) as pipe:
        await prime(pipe, tape)
        counters, handlers = zip(
            *(counting_handler() for _ in range(MEMORY_SUBSCRIBERS)), strict=True
        )
        await subscribe_all(pipe, tape, handlers)
        cursor = tape.cursor()

        async def run_until(target: int) -> None:
            nonlocal sent
            while sent < target:
                burst = min(MEMORY_LANE, target - sent)
                await publish_burst(pipe, cursor, burst)
                if on_burst is not None:
                    on_burst(pipe, sent + burst)
                await pipe.wait_idle()
                sent += burst

        await run_until(int(events * MEMORY_WARMUP))
        warm = heap_figures("warm")
        start = time.perf_counter()
        await run_until(events)
        seconds = time.perf_counter() - start
        end = heap_figures("end")
        stats = pipe.statistics()
    delivered = sum(count[0] for count in counters)
    if delivered != events * MEMORY_SUBSCRIBERS or any(lane.skipped for lane in stats.lanes):
        raise RuntimeError(f"memory run lost deliveries: {delivered}")
    return (
        warm
        | end
        | {
            "deliveries": float(delivered),
            "seconds": seconds,
            "rss_growth_bytes": end["end_rss_bytes"] - warm["warm_rss_bytes"],
            "blocks_growth": end["end_allocated_blocks"] - warm["warm_allocated_blocks"],
            "gc_objects_growth": end["end_gc_objects"] - warm["warm_gc_objects"],
            "peak_rss_bytes": float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
            "pool_capacity": float(stats.pool.capacity),
            "pool_high_water": float(stats.pool.high_water),
            "pool_peak_utilisation": stats.pool.high_water / stats.pool.capacity,
            "pool_waits": float(stats.pool.waits),
        }
    )


async def memory_paced(duration: float, tape: Tape) -> Metrics:
    async with open_pipeline(memory_config()) as pipe:
        await prime(pipe, tape)
        counters, handlers = zip(
            *(counting_handler() for _ in range(MEMORY_SUBSCRIBERS)), strict=True
        )
        await subscribe_all(pipe, tape, handlers)
        publish, pool = pipeline_tick(pipe, tape), pipe.pool
        utilisation: list[float] = []

        async def tick() -> None:
            await publish()
            utilisation.append(pool.statistics().utilisation)

        await pace(tick, MEMORY_RATE, duration)
        await pipe.wait_idle()
        stats = pipe.statistics().pool
    return {
        "deliveries": float(sum(count[0] for count in counters)),
        "pool_capacity": float(stats.capacity),
        "pool_high_water": float(stats.high_water),
        "pool_peak_utilisation": stats.high_water / stats.capacity,
        "sampled_utilisation_mean": statistics.fmean(utilisation),
        "sampled_utilisation_max": max(utilisation),
    }


def bench_memory(args: argparse.Namespace, tape: Tape) -> tuple[dict[str, Any], list[Criterion]]:
    gc.collect()
    bursts = trio.run(memory_bursts, args.memory_deliveries, tape)
    advance(args)
    paced = trio.run(memory_paced, args.duration, tape)
    advance(args)
    mib = 1 << 20
    print(
        f"[memory] {int(bursts['deliveries']):,} deliveries to {MEMORY_SUBSCRIBERS} subscribers "
        f"in bursts of {MEMORY_LANE} (lane {MEMORY_LANE}, pool {int(bursts['pool_capacity']):,}); "
        f"one run"
    )
    print(
        f"  RSS after warm-up {bursts['warm_rss_bytes'] / mib:.2f} MiB, at end "
        f"{bursts['end_rss_bytes'] / mib:.2f} MiB: "
        f"growth {bursts['rss_growth_bytes'] / 1024:+.0f} KiB"
        f" (peak RSS of the process {bursts['peak_rss_bytes'] / mib:.1f} MiB)"
    )
    print(
        f"  allocated blocks {bursts['blocks_growth']:+,.0f}, GC-tracked objects "
        f"{bursts['gc_objects_growth']:+,.0f}; "
        f"{bursts['deliveries'] / bursts['seconds'] / 1e6:.2f}M"
        f" deliveries/s including the idle waits"
    )
    print(
        f"  pool high water {int(bursts['pool_high_water']):,} of {int(bursts['pool_capacity']):,}"
        f" ({bursts['pool_peak_utilisation']:.1%}), waits {int(bursts['pool_waits'])}"
    )
    print(
        f"  paced {MEMORY_RATE:g} events/s x {MEMORY_SUBSCRIBERS} for {args.duration:g} s: pool "
        f"high water {int(paced['pool_high_water'])} ({paced['pool_peak_utilisation']:.2%}), "
        f"sampled mean {paced['sampled_utilisation_mean']:.3%}, max "
        f"{paced['sampled_utilisation_max']:.3%}"
    )
    criteria = [
        Criterion(
            "memory: RSS growth <= 1 MiB after warm-up",
            bursts["rss_growth_bytes"] <= RSS_GROWTH_GOAL,
            f"{bursts['rss_growth_bytes'] / 1024:+.0f} KiB",
        ),
        Criterion(
            "memory: pool utilisation < 80% under paced load",
            paced["pool_peak_utilisation"] < POOL_UTILISATION_GOAL,
            f"{paced['pool_peak_utilisation']:.2%} peak",
        ),
    ]
    config = {
        "subscribers": MEMORY_SUBSCRIBERS,
        "lane_capacity": MEMORY_LANE,
        "burst": MEMORY_LANE,
        "deliveries": args.memory_deliveries,
        "warmup_fraction": MEMORY_WARMUP,
        "paced_rate": MEMORY_RATE,
        "paced_seconds": args.duration,
    }
    return {"config": config, "bursts": bursts, "paced": paced}, criteria
