"""The soak: a sustained load, sampled as it runs, judged on memory growth after warm-up.

The load is the memory benchmark's (:func:`._memory.memory_bursts`): ten counting
subscribers, events published in bursts of one lane's worth, each burst drained before
the next, so nothing is ever dropped and every envelope goes back to the pool. While it
runs, every few bursts a :class:`SoakSample` records the resident set size, the garbage
collector's collections per generation so far, the pool's leases out, and the intake's
and lanes' depths. Samples are taken as a burst has just been published, before the
dispatcher has run: the burst is in the intake then and the lanes are empty, so the
lanes' high-water mark is sampled too (it shows how deep they got in between).

The verdict is the memory benchmark's figure: RSS after a full collection at the end
against RSS after a full collection once the warm-up (the first 10% of deliveries) is
done; the goal is at most 1 MiB of growth. The samples add the trend after warm-up (a
least-squares slope, in bytes per million deliveries) and the full (gen2) collections
the load itself caused, which should be none once the pool is warm.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Final

import attrs
import trio

from meltica_trio import Pipeline
from meltica_trio.benchmarks._measure import Metrics, rss_bytes
from meltica_trio.benchmarks._memory import (
    MEMORY_LANE,
    MEMORY_SUBSCRIBERS,
    MEMORY_WARMUP,
    RSS_GROWTH_GOAL,
    memory_bursts,
)
from meltica_trio.benchmarks._tape import Tape

SOAK_DELIVERIES: Final = 10_000_000
"""The issue's goal: ten million deliveries."""
SOAK_SAMPLES: Final = 200
"""Samples taken over a soak (about; one every ``bursts // SOAK_SAMPLES`` bursts)."""
FORCED_WARMUP_COLLECTIONS: Final = 1
"""Full collections the warm-up measurement forces itself (not the load's doing)."""


@attrs.frozen(kw_only=True)
class SoakSample:
    """The process and the pipeline at one moment of the soak.

    Attributes:
        deliveries: deliveries published so far (events x subscribers).
        seconds: since the soak started.
        rss_bytes: resident set size.
        gc_collections: collections per generation (gen0, gen1, gen2) since the start.
        pool_in_use: envelopes lent out (the burst in flight).
        intake_depth: events waiting for the dispatcher.
        lane_depth_max: the deepest lane now.
        lane_depth_total: events queued over all lanes now.
        lane_high_water: the deepest any lane has been so far.
    """

    deliveries: int
    seconds: float
    rss_bytes: int
    gc_collections: tuple[int, int, int]
    pool_in_use: int
    intake_depth: int
    lane_depth_max: int
    lane_depth_total: int
    lane_high_water: int


@attrs.frozen(kw_only=True)
class SoakVerdict:
    """What the soak found.

    Attributes:
        deliveries: deliveries made.
        warmup_deliveries: deliveries before the warm-up measurement.
        seconds: wall time of the measured part (after warm-up).
        rss_warm_bytes: RSS after a full collection at the end of warm-up.
        rss_end_bytes: RSS after a full collection at the end.
        rss_growth_bytes: the difference, the figure judged.
        goal_bytes: the most growth allowed.
        passed: growth within the goal.
        sampled_growth_bytes: live RSS, last sample against the first after warm-up (it
            leaves out the step the warm-up measurement itself causes: it lists every
            GC-tracked object after reading RSS, and the list's memory stays with the
            allocator).
        slope_bytes_per_million: least-squares trend of sampled RSS after warm-up.
        gen2_after_warmup: full collections the load caused after warm-up.
        blocks_growth: CPython allocated blocks, end against warm-up.
        gc_objects_growth: GC-tracked objects, end against warm-up.
        pool_high_water: most envelopes out at once.
        pool_capacity: the pool's size.
    """

    deliveries: int
    warmup_deliveries: int
    seconds: float
    rss_warm_bytes: int
    rss_end_bytes: int
    rss_growth_bytes: int
    goal_bytes: int
    passed: bool
    sampled_growth_bytes: int
    slope_bytes_per_million: float
    gen2_after_warmup: int
    blocks_growth: int
    gc_objects_growth: int
    pool_high_water: int
    pool_capacity: int


def gc_collections() -> tuple[int, int, int]:
    gen0, gen1, gen2 = (generation["collections"] for generation in gc.get_stats())
    return gen0, gen1, gen2


@attrs.define(eq=False)
class Sampler:
    """Takes a :class:`SoakSample` every ``every`` bursts; ``on_sample`` sees each."""

    every: int
    on_sample: Callable[[SoakSample], None] | None = None
    samples: list[SoakSample] = attrs.field(factory=list)
    bursts: int = 0
    start: float = attrs.field(factory=time.perf_counter)
    gc_start: tuple[int, int, int] = attrs.field(factory=gc_collections)

    def __call__(self, pipe: Pipeline, events: int) -> None:
        self.bursts += 1
        if self.bursts % self.every:
            return
        stats = pipe.statistics()
        depths = [lane.depth for lane in stats.lanes]
        now = gc_collections()
        sample = SoakSample(
            deliveries=events * MEMORY_SUBSCRIBERS,
            seconds=time.perf_counter() - self.start,
            rss_bytes=rss_bytes(),
            gc_collections=(
                now[0] - self.gc_start[0],
                now[1] - self.gc_start[1],
                now[2] - self.gc_start[2],
            ),
            pool_in_use=stats.pool.in_use,
            intake_depth=stats.intake_depth,
            lane_depth_max=max(depths, default=0),
            lane_depth_total=sum(depths),
            lane_high_water=max((lane.high_water for lane in stats.lanes), default=0),
        )
        self.samples.append(sample)
        if self.on_sample is not None:
            self.on_sample(sample)


def slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of y on x (0 with fewer than two distinct x)."""
    if len({x for x, _ in points}) < 2:
        return 0.0
    return statistics.linear_regression([x for x, _ in points], [y for _, y in points]).slope


def judge(deliveries: int, figures: Metrics, samples: list[SoakSample]) -> SoakVerdict:
    warmup = int(deliveries // MEMORY_SUBSCRIBERS * MEMORY_WARMUP) * MEMORY_SUBSCRIBERS
    after = [s for s in samples if s.deliveries > warmup]
    trend = slope([(s.deliveries / 1e6, float(s.rss_bytes)) for s in after])
    before = [s for s in samples if s.deliveries <= warmup]
    gen2_at_warm = before[-1].gc_collections[2] if before else 0
    gen2_end = samples[-1].gc_collections[2] if samples else 0
    growth = int(figures["rss_growth_bytes"])
    return SoakVerdict(
        deliveries=int(figures["deliveries"]),
        warmup_deliveries=warmup,
        seconds=figures["seconds"],
        rss_warm_bytes=int(figures["warm_rss_bytes"]),
        rss_end_bytes=int(figures["end_rss_bytes"]),
        rss_growth_bytes=growth,
        goal_bytes=RSS_GROWTH_GOAL,
        passed=growth <= RSS_GROWTH_GOAL,
        sampled_growth_bytes=after[-1].rss_bytes - after[0].rss_bytes if after else 0,
        slope_bytes_per_million=trend,
        gen2_after_warmup=max(0, gen2_end - gen2_at_warm - FORCED_WARMUP_COLLECTIONS),
        blocks_growth=int(figures["blocks_growth"]),
        gc_objects_growth=int(figures["gc_objects_growth"]),
        pool_high_water=int(figures["pool_high_water"]),
        pool_capacity=int(figures["pool_capacity"]),
    )


def run_soak(
    deliveries: int,
    tape: Tape,
    *,
    samples: int = SOAK_SAMPLES,
    on_sample: Callable[[SoakSample], None] | None = None,
) -> tuple[SoakVerdict, list[SoakSample]]:
    """Run ``deliveries`` (rounded down to whole events for ten subscribers) and judge."""
    events = deliveries // MEMORY_SUBSCRIBERS
    bursts = max(1, -(-events // MEMORY_LANE))
    sampler = Sampler(every=max(1, bursts // max(1, samples)), on_sample=on_sample)
    gc.collect()
    figures = trio.run(_soak, deliveries, tape, sampler)
    return judge(deliveries, figures, sampler.samples), sampler.samples


async def _soak(deliveries: int, tape: Tape, sampler: Sampler) -> Metrics:
    return await memory_bursts(deliveries, tape, on_burst=sampler)
