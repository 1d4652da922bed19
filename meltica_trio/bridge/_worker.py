"""``open_worker``: one remote consumer, run in this process through the consumer runtime.

The function runs exactly as it would inside a pipeline: a
:class:`~meltica_trio.consumers.ConsumerRuntime` drains a :class:`~meltica_trio.bus.Lane`
(delivery classes enforced), recycles every envelope on every exit path, measures
latency and turns exceptions into DLQ entries; its context sends orders and has a
trading switch. What differs is where the lane's events come from (the group's
critical stream and the wanted market data streams) and where orders go (the
control stream). The one addition is a thin wrapper that tells the critical intake
when the function is done with an event, so its entry is acknowledged then and
not before.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

import attrs
import trio

from meltica_trio.bus import Lane, LaneStatistics
from meltica_trio.consumers import ConsumerContext, ConsumerRuntime, ConsumerStatistics, Handler
from meltica_trio.consumers._runtime import is_async_handler
from meltica_trio.events import ControlAck, ControlResult, Event, Kind
from meltica_trio.lifecycle import EventPool, Exhaustion, PoolStatistics, Recycler
from meltica_trio.telemetry import DeadLetterQueue, DeadLetterStatistics

from ._config import WorkerConfig
from ._critical import CriticalIntake, CriticalStatistics
from ._defaults import POOL_MAX_WAIT
from ._forwarder import Forwarder, ForwarderStatistics, RemoteControl
from ._gate import ApplyGate
from ._group import GroupReader, GroupStatistics, ensure_group
from ._link import Link, LinkStatistics, open_link
from ._market import MarketIntake, MarketStatistics
from ._streams import StreamNames
from ._wire import RemoteCommand, attachment_fields

DRAIN_TIMEOUT: Final = 5.0
"""Seconds a closing worker gives its consumer to finish the entries it holds."""


@attrs.frozen(kw_only=True)
class WorkerStatistics:
    """A snapshot of a worker.

    Attributes:
        link: the Redis connection's health.
        consumer: the consumer runtime's counters and latencies (as in a pipeline).
        lane: the consumer's lane.
        critical: the critical stream: applied, acknowledged, duplicates, malformed.
        critical_group: how critical entries were read (new, recovered, claimed).
        market: the market data topics read.
        forwarder: orders sent to the control stream.
        dlq: the consumer's DLQ.
        pool: the worker's envelope pool.
    """

    link: LinkStatistics
    consumer: ConsumerStatistics
    lane: LaneStatistics
    critical: CriticalStatistics
    critical_group: GroupStatistics
    market: MarketStatistics
    forwarder: ForwarderStatistics
    dlq: DeadLetterStatistics
    pool: PoolStatistics


def track_completion(fn: Handler, completed: Callable[[Event], None]) -> Handler:
    """``fn``, telling ``completed(event)`` when it returned or raised (not when cancelled)."""
    if is_async_handler(fn):

        async def tracked_async(event: Event, ctx: ConsumerContext) -> None:
            try:
                await fn(event, ctx)  # type: ignore[misc]
            except Exception:
                completed(event)
                raise
            completed(event)

        return tracked_async

    def tracked(event: Event, ctx: ConsumerContext) -> Awaitable[None] | None:
        try:
            result = fn(event, ctx)
        except Exception:
            completed(event)
            raise
        completed(event)
        return result

    return tracked


@attrs.define(eq=False)
class Worker:
    """A running worker; get one from :func:`open_worker`.

    Attributes:
        config: its settings.
        runtime: the consumer runtime running the function.
        dlq: the consumer's DLQ (also shipped to ``<prefix>:dlq:<group>``).
        recycler: takes back every envelope of the worker.
    """

    config: WorkerConfig
    runtime: ConsumerRuntime
    dlq: DeadLetterQueue
    recycler: Recycler
    _link: Link
    _pool: EventPool[Event]
    _lane: Lane
    _critical: CriticalIntake
    _market: MarketIntake
    _forwarder: Forwarder
    _names: StreamNames
    _intake: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)

    async def _attach(self) -> None:
        """Make the group's critical stream and ask the pipeline to subscribe the group."""
        names, group = self._names, self.config.group
        await ensure_group(self._link, names.critical(group), group)
        fields = attachment_fields(self.config.attachment)

        async def xadd() -> object:
            return await self._link.client.xadd(names.control, fields)

        await self._link.run(xadd, "attach")

    async def _serve_intake(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Attach, then read the critical and market data streams (until told to stop)."""
        task_status.started()
        with self._intake:
            await self._attach()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._critical.serve_reader)
                nursery.start_soon(self._critical.serve_heartbeat)
                nursery.start_soon(self._market.serve)

    async def stop_reading(self) -> None:
        """Read nothing more; wait (up to :data:`DRAIN_TIMEOUT`) for held entries to finish."""
        self._intake.cancel(reason="the worker is closing")
        with trio.move_on_after(DRAIN_TIMEOUT):
            await self._critical.wait_drained()

    def statistics(self) -> WorkerStatistics:
        """A snapshot of every part of the worker."""
        return WorkerStatistics(
            link=self._link.statistics(),
            consumer=self.runtime.statistics(),
            lane=self._lane.statistics(),
            critical=self._critical.statistics(),
            critical_group=self._critical.reader.statistics(),
            market=self._market.statistics(),
            forwarder=self._forwarder.statistics(),
            dlq=self.dlq.statistics(),
            pool=self._pool.statistics(),
        )


def _answers_to(
    lane: Lane, pool: EventPool[Event], wall_clock: Callable[[], int]
) -> Callable[[str, ControlAck | ControlResult], None]:
    """Puts refusals made in this process (switch off, queue full) in the lane."""
    event_ids = itertools.count(1)

    def deliver(consumer_id: str, answer: ControlAck | ControlResult) -> None:
        event = pool.acquire_or_allocate()
        event.event_id = next(event_ids)
        is_ack = isinstance(answer, ControlAck)
        event.kind = Kind.CONTROL_ACK if is_ack else Kind.CONTROL_RESULT
        event.provider = "control"
        event.payload = answer
        event.ingest_ts = event.emit_ts = wall_clock()
        lane.put(event)

    return deliver


def _pool(config: WorkerConfig, recycler: Recycler) -> EventPool[Event]:
    """Envelopes for a full lane and twice the entries in flight; then from the heap."""
    return EventPool(
        Event,
        recycler=recycler,
        capacity=config.lane_capacity + 2 * config.in_flight,
        on_exhausted=Exhaustion.HEAP,  # critical events must not fail for want of one
        max_wait=POOL_MAX_WAIT,
        name=f"worker {config.group}",
    )


def _assemble(
    config: WorkerConfig,
    fn: Handler,
    link: Link,
    forward: trio.MemorySendChannel[RemoteCommand],
    queued: trio.MemoryReceiveChannel[RemoteCommand],
    wall_clock: Callable[[], int],
) -> Worker:
    """The worker's parts, wired; nothing runs yet."""
    names, group = StreamNames(config.prefix), config.group
    recycler = Recycler(debug=config.debug)
    pool = _pool(config, recycler)
    dlq = DeadLetterQueue()
    lane = Lane(
        group,
        config.lane_capacity,
        recycler,
        on_book_lost=lambda provider, instrument: market.book_lost(provider, instrument),
        wall_clock=wall_clock,
    )
    market = MarketIntake(link, names, config, pool, lane, count=config.in_flight)
    reader = GroupReader(
        link,
        names.critical(group),
        group,
        config.name,
        block=config.read_block,
        claim_idle=config.claim_idle,
    )
    gate = ApplyGate(link.client, names, group, config.name, config.applied_ttl)
    heartbeat = config.claim_idle / 3
    critical = CriticalIntake(
        link, names, reader, gate, pool, lane, dlq, in_flight=config.in_flight, heartbeat=heartbeat
    )
    deliver = _answers_to(lane, pool, wall_clock)
    control = RemoteControl(deliver, lambda: 0, forward=forward)
    context = ConsumerContext(
        group, control=control, deliver=deliver, trading_enabled=config.trading
    )
    tracked = track_completion(fn, critical.completed)
    runtime = ConsumerRuntime(group, tracked, lane, recycler, dlq, wall_clock, context=context)
    forwarder = Forwarder(link, names, queued)
    return Worker(
        config, runtime, dlq, recycler, link, pool, lane, critical, market, forwarder, names
    )


@asynccontextmanager
async def open_worker(
    config: WorkerConfig, fn: Handler, *, wall_clock: Callable[[], int] = time.time_ns
) -> AsyncIterator[Worker]:
    """Run ``fn`` as the remote consumer ``config.group`` for the ``async with`` block.

    On entry the worker asks the pipeline (through the control stream) to attach
    its group, then reads. Opening does not wait for Redis. Leaving the block stops
    reading, gives the function :data:`DRAIN_TIMEOUT` seconds to finish the entries
    it holds (each acknowledged as it finishes), then cancels; entries still held
    are claimed by another worker of the group after ``claim_idle``.
    """
    send, receive = trio.open_memory_channel[RemoteCommand](config.command_capacity)
    async with open_link(config.url, config.backoff) as link:
        worker = _assemble(config, fn, link, send, receive, wall_clock)
        try:
            with send:
                async with trio.open_nursery() as nursery:
                    await nursery.start(worker.runtime.serve)
                    await nursery.start(worker._critical.serve_acker)
                    await nursery.start(worker._forwarder.serve)
                    await nursery.start(worker._serve_intake)
                    try:
                        yield worker
                    finally:
                        with trio.CancelScope(shield=True):
                            await worker.stop_reading()
                        nursery.cancel_scope.cancel(reason="the worker's block ended")
        finally:
            worker._lane.close()  # recycles whatever the consumer had not taken yet
