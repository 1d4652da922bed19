"""The dispatcher: intake -> per-stream ordering -> routing -> fan-out into lanes."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import attrs
import trio

from meltica_trio._defaults import (
    DISPATCH_BATCH,
    LATENCY_EXACT_BATCH,
    LATENCY_SAMPLE_MASK,
    SPREAD_SAMPLE_MASK,
)
from meltica_trio.bus import Lane
from meltica_trio.events import Event
from meltica_trio.lifecycle import EventPool, Recycler
from meltica_trio.orchestrator import Merger
from meltica_trio.telemetry import LatencyHistogram

from ._fanout import FanoutStatistics, SpreadTracker
from ._ordering import Orderer
from ._routing import RoutingTable


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class Dispatcher:
    """Takes published events, orders each stream, and fans every event out.

    Fan-out never waits on a subscriber: each lane's ``put`` returns at once. An
    event for N subscribers becomes N - 1 pooled duplicates sharing its payload,
    and the original goes to the first lane, so ownership of every envelope passes
    to exactly one lane; an event for nobody is recycled at once. The only wait
    is for the pool, when it cannot lend the N - 1 duplicates right now.

    Args:
        intake: the receiving end of the intake channel; the dispatcher owns it.
        pool: lends the duplicates.
        recycler: takes back what the dispatcher drops.
        routing: the routing table.
        orderer: the ordering stage.
        merger: the orchestrator's windowed merge, fed every released event.
        wall_clock: ns since the epoch, for ``emit_ts`` and fan-out timings.
    """

    intake: trio.MemoryReceiveChannel[Event]
    pool: EventPool[Event]
    recycler: Recycler
    routing: RoutingTable
    orderer: Orderer
    merger: Merger
    wall_clock: Callable[[], int]
    spread: SpreadTracker = attrs.field(init=False, factory=SpreadTracker)
    _released: deque[Event] = attrs.field(init=False, factory=deque)
    _events: int = attrs.field(init=False, default=0)
    _deliveries: int = attrs.field(init=False, default=0)
    _unrouted: int = attrs.field(init=False, default=0)
    _max_subscribers: int = attrs.field(init=False, default=0)
    _to_last_lane: LatencyHistogram = attrs.field(init=False, factory=LatencyHistogram)

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Dispatch until the intake closes or the task is cancelled.

        Cancellation:
            On the way out every event still in the intake or held by ordering is
            recycled, so the pool balances.
        """
        task_status.started()
        try:
            await self._loop()
        finally:
            with self.intake:
                self._recycle_leftovers()

    async def _loop(self) -> None:
        orderer, merger, released = self.orderer, self.merger, self._released
        keep = released.append
        while True:
            deadline = min(orderer.next_deadline(), merger.next_deadline())
            if deadline == math.inf:
                # No timer needed: a cancel scope per wake-up would cost a deadline-heap
                # entry each time, for nothing.
                if not await self._take(keep):
                    return
            else:
                with trio.move_on_at(deadline):
                    if not await self._take(keep):
                        return
            now = trio.current_time()
            orderer.expire(now, keep)
            merger.expire(now, self._emit_merged)
            if released:
                await self._fan_out(released, now)

    def _emit_merged(self, event: Event) -> None:
        """Queue a merged event for fan-out, stamped with its ingest time.

        A merged event comes into being when its window closes, so that is its
        ``ingest_ts``; its fragments' own times are older by up to the window, and
        delivery latency would otherwise measure the window rather than the pipeline.
        """
        event.ingest_ts = self.wall_clock()
        self._released.append(event)

    async def _take(self, keep: Callable[[Event], None]) -> bool:
        """Admit a batch from the intake into ordering; False once the intake has closed."""
        intake, admit = self.intake, self.orderer.admit
        try:
            event = await intake.receive()
        except trio.EndOfChannel:
            return False
        now = trio.current_time()
        admit(event, now, keep)
        for _ in range(DISPATCH_BATCH - 1):
            try:
                event = intake.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            admit(event, now, keep)
        return True

    async def _fan_out(self, events: deque[Event], now: float) -> None:
        """Fan out and consume ``events``; each leaves the deque as it is handled.

        Each event is offered to the merger first; a merged event it completes joins
        the end of ``events`` and is fanned out in the same pass.
        """
        lanes_for, version, pool = self.routing.lanes_for, self.routing.version, self.pool
        clock, duplicate = self.wall_clock, pool.duplicate_nowait
        mask = 0 if len(events) <= LATENCY_EXACT_BATCH else LATENCY_SAMPLE_MASK
        offer, merged = self.merger.offer, self._emit_merged
        while events:
            event = events.popleft()
            offer(event, now, merged)
            lanes = lanes_for(event.provider, event.instrument, event.kind)
            count = len(lanes)
            self._events += 1
            if not count:
                self._unrouted += 1
                self.recycler.recycle(event)
                continue
            event.routing_version = version
            event.emit_ts = clock()
            # Read now: once in a lane the event may be replaced or recycled (and in debug
            # mode poisoned), so nothing below may touch it.
            event_id, ingest_ts = event.event_id, event.ingest_ts
            if not event_id & SPREAD_SAMPLE_MASK:
                self.spread.expect(event_id, count)
            if count == 1:
                lanes[0].put(event)
            elif count - 1 > pool.available():
                await self._fan_out_waiting(event, lanes)
                # The routing may have changed while we waited; later events are routed
                # by the current table, so they must carry its version.
                version = self.routing.version
            else:
                # Duplicates first: a lane may replace or recycle the original once it has it.
                first, *others = lanes
                for lane in others:
                    lane.put(duplicate(event))
                first.put(event)
            self._deliveries += count
            if count > self._max_subscribers:
                self._max_subscribers = count
            if not event_id & mask:
                self._to_last_lane.record(clock() - ingest_ts)

    async def _fan_out_waiting(self, event: Event, lanes: tuple[Lane, ...]) -> None:
        """The pool is short: wait for each duplicate (its policy applies past max_wait)."""
        duplicates: list[Event] = []
        try:
            for _ in lanes[1:]:
                # One at a time, so a failure part-way knows exactly what to recycle.
                duplicates.append(await self.pool.duplicate(event))  # noqa: PERF401
        except BaseException:
            self.recycler.recycle_all([*duplicates, event])
            raise
        for lane, copy in zip(lanes[1:], duplicates, strict=True):
            lane.put(copy)
        lanes[0].put(event)

    def _recycle_leftovers(self) -> None:
        self.merger.drain()
        leftovers = [*self._released, *self.orderer.drain()]
        self._released.clear()
        while True:
            try:
                leftovers.append(self.intake.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        self.recycler.recycle_all(leftovers)

    def statistics(self) -> FanoutStatistics:
        """Fan-out counters and timings."""
        return FanoutStatistics(
            events=self._events,
            deliveries=self._deliveries,
            unrouted=self._unrouted,
            max_subscribers=self._max_subscribers,
            to_last_lane=self._to_last_lane.summary(),
            start_spread=self.spread.histogram.summary(),
        )
