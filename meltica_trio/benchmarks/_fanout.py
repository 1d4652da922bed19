"""The harness every data-plane benchmark shares: handlers, publishers, and raw trio.

Two ways of feeding the same consumers: the pipeline (``new_event`` then
``publish_nowait``, or ``await publish`` when the intake is full), and raw trio (one
bounded memory channel per consumer, the producer sending each item to every channel).
Each pipeline is *primed* first with one event per stream (seq 0, published before anyone
subscribes), because a stream's first event is held for ``max_lateness`` (5 ms) in case an
earlier one is still on its way, and that one-off wait would otherwise show up as an
outlier in every run.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Final

import attrs
import trio

from meltica_trio import Event, Kind, Pipeline, PipelineConfig, Trade
from meltica_trio.benchmarks._measure import Metrics, Samples, nearest_rank
from meltica_trio.benchmarks._tape import PROVIDER, RawItem, Tape

INTAKE: Final = PipelineConfig().intake_capacity
"""The default intake, which every benchmark keeps."""

Tick = Callable[[], Awaitable[None]]


def delivery_figures(pipe: Pipeline, consumer_ids: Sequence[str]) -> Metrics:
    """The pipeline's own ingest-to-start summaries for ``consumer_ids``, merged."""
    wanted = set(consumer_ids)
    delivery = [c.delivery for c in pipe.statistics().consumers if c.consumer_id in wanted]
    return {
        "pipe_p50_median_ns": float(statistics.median(d.p50_ns for d in delivery)),
        "pipe_p99_median_ns": float(statistics.median(d.p99_ns for d in delivery)),
        "pipe_p99_max_ns": float(max(d.p99_ns for d in delivery)),
        "pipe_p999_max_ns": float(max(d.p999_ns for d in delivery)),
        "pipe_max_ns": float(max(d.max_ns for d in delivery)),
        "pipe_timed": float(sum(d.count for d in delivery)),
    }


def fanout_figures(pipe: Pipeline) -> Metrics:
    stats = pipe.statistics()
    return {
        "to_last_lane_p50_ns": float(stats.fanout.to_last_lane.p50_ns),
        "to_last_lane_p99_ns": float(stats.fanout.to_last_lane.p99_ns),
        "start_spread_p50_ns": float(stats.fanout.start_spread.p50_ns),
        "start_spread_p99_ns": float(stats.fanout.start_spread.p99_ns),
        "pool_high_water": float(stats.pool.high_water),
        "pool_peak_utilisation": stats.pool.high_water / stats.pool.capacity,
        "lane_high_water_max": float(max(lane.high_water for lane in stats.lanes)),
        "lane_skipped": float(sum(lane.skipped for lane in stats.lanes)),
    }


def counting_handler() -> tuple[list[int], Callable[[object, object], None]]:
    """The trivial consumer: it counts."""
    count = [0]

    def handle(event: object, ctx: object) -> None:
        count[0] += 1

    return count, handle


def latency_handler(samples: Samples) -> Callable[[Event, object], None]:
    """Records ingest-to-start in ``samples`` (pipeline events)."""
    append, now = samples.append, time.time_ns

    def handle(event: Event, ctx: object) -> None:
        append(now() - event.ingest_ts)

    return handle


def raw_latency_handler(samples: Samples) -> Callable[[RawItem, object], None]:
    """Records ingest-to-start in ``samples`` (raw-trio items)."""
    append, now = samples.append, time.time_ns

    def handle(item: RawItem, ctx: object) -> None:
        append(now() - item[0])

    return handle


async def prime(pipe: Pipeline, tape: Tape) -> None:
    """Open every stream's ordering with seq 0 while nobody listens (see module docs)."""
    for instrument in tape.instruments:
        event = pipe.new_event(kind=Kind.TRADE, provider=PROVIDER, instrument=instrument, seq=0)
        await pipe.publish(event)
    await pipe.wait_idle()


async def subscribe_all(
    pipe: Pipeline, tape: Tape, handlers: Sequence[Callable[..., Any]], prefix: str = "c"
) -> list[str]:
    ids = [f"{prefix}{i}" for i in range(len(handlers))]
    for consumer_id, handler in zip(ids, handlers, strict=True):
        await pipe.subscribe(consumer_id, handler, instruments=tape.instruments, kinds=Kind.TRADE)
    return ids


async def publish_burst(pipe: Pipeline, cursor: Iterator[tuple[str, Trade, int]], n: int) -> None:
    """``n`` events as fast as the intake takes them."""
    new_event, publish_nowait, publish = pipe.new_event, pipe.publish_nowait, pipe.publish
    kind = Kind.TRADE
    for instrument, trade, seq in itertools.islice(cursor, n):
        event = new_event(
            kind=kind, provider=PROVIDER, instrument=instrument, seq=seq, payload=trade
        )
        try:
            publish_nowait(event)
        except trio.WouldBlock:
            await publish(event)


def pipeline_tick(pipe: Pipeline, tape: Tape) -> Tick:
    """One paced publish: a new event, then ``await publish``."""
    cursor, new_event, publish = tape.cursor(), pipe.new_event, pipe.publish

    async def tick() -> None:
        instrument, trade, seq = next(cursor)
        event = new_event(
            kind=Kind.TRADE, provider=PROVIDER, instrument=instrument, seq=seq, payload=trade
        )
        await publish(event)

    return tick


@attrs.define
class RawFanout:
    """The raw-trio producer: one bounded memory channel per consumer, each item to all."""

    sends: list[trio.MemorySendChannel[Any]]
    blocked: int = 0
    """Sends that found a channel full and had to wait: the producer stalled."""

    async def send(self, item: object) -> None:
        for send in self.sends:
            try:
                send.send_nowait(item)
            except trio.WouldBlock:
                self.blocked += 1
                await send.send(item)

    def close(self) -> None:
        for send in self.sends:
            send.close()


async def consume_each(
    receive: trio.MemoryReceiveChannel[Any],
    handle: Callable[[Any, object], Any],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Raw consumer, the idiom: ``async for``, a checkpoint per item."""
    task_status.started()
    with receive:
        async for item in receive:
            # An async handler (the slow consumer in isolation) returns its coroutine.
            result = handle(item, None)
            if result is not None:
                await result


async def consume_draining(
    receive: trio.MemoryReceiveChannel[Any],
    handle: Callable[[Any, object], Any],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Raw consumer, batched: one ``await receive()``, then ``receive_nowait`` to empty."""
    task_status.started()
    with receive:
        while True:
            try:
                item = await receive.receive()
            except trio.EndOfChannel:
                return
            handle(item, None)
            while True:
                try:
                    item = receive.receive_nowait()
                except trio.WouldBlock:
                    break
                except trio.EndOfChannel:
                    return
                handle(item, None)


async def pace(tick: Tick, rate: float, duration: float) -> list[float]:
    """Call ``tick`` ``rate`` times a second for ``duration`` s; return each wake's lateness."""
    interval = 1.0 / rate
    lateness: list[float] = []
    start = trio.current_time()
    for i in range(round(rate * duration)):
        deadline = start + i * interval
        await trio.sleep_until(deadline)
        lateness.append(trio.current_time() - deadline)
        await tick()
    return lateness


def pacing_figures(lateness: list[float], timing: Metrics) -> Metrics:
    ordered = sorted(int(late * 1e9) for late in lateness)
    return timing | {
        "events": float(len(lateness)),
        "rate": len(lateness) / timing["wall_s"],
        "wake_late_p50_ns": float(nearest_rank(ordered, 0.50)),
        "wake_late_p99_ns": float(nearest_rank(ordered, 0.99)),
    }
