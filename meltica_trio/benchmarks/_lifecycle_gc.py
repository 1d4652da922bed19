"""Garbage collections per generation while pooled or fresh envelopes turn over.

Collections are counted per generation (``gc.get_stats()`` deltas) while a ring of
live objects turns over, the way a lane holds events for a while: fresh Events dropped
as they fall out of the ring, against pooled duplicates recycled as they fall out of it.
(CPython 3.11 and 3.12 count allocations minus deallocations toward a gen0 collection, so
a ring that turns over at a steady size adds little; the count shows what filling the
ring and anything else in the loop cost.) A second pair of workloads fills and drains in
bursts, the way a fan-out burst fills ten lanes of 1024 before their consumers drain
them: there fresh envelopes push the allocation count through every generation, pooled
ones through none.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable
from typing import Final

import attrs

from meltica_trio.benchmarks._lifecycle_loops import sample_event
from meltica_trio.events import Event
from meltica_trio.lifecycle import EventPool, Recycler

RING_SIZE: Final = 1024
"""Objects a GC workload keeps alive at once, like a lane's buffer."""
BURST_SIZE: Final = 10_240
"""Envelopes alive at once in the burst workloads: 10 lanes x 1024."""


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
