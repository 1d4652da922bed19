"""``open_pipeline``: the nursery that owns the dispatcher, the lanes and the consumers."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager

import attrs
import trio

from meltica_trio._config import PipelineConfig
from meltica_trio._defaults import IDLE_POLL
from meltica_trio._errors import ConsumerExistsError, PipelineClosedError, PoolExhausted
from meltica_trio.bus import Lane, LaneStatistics
from meltica_trio.consumers import ConsumerRuntime, ConsumerStatistics, Handler
from meltica_trio.dispatcher import (
    Dispatcher,
    FanoutStatistics,
    Orderer,
    OrderingStatistics,
    RoutingTable,
    Subscription,
)
from meltica_trio.events import Event, Kind, Payload
from meltica_trio.lifecycle import EventPool, PoolStatistics, Recycler
from meltica_trio.telemetry import DeadLetterQueue, DeadLetterStatistics

log = logging.getLogger(__name__)

ResyncListener = Callable[[str, str], None]
"""Told (instrument, reason) when the pipeline needs a fresh book from a provider."""


@attrs.frozen(kw_only=True)
class PipelineStatistics:
    """A snapshot of every component of a pipeline."""

    routing_version: int
    subscribers: int
    intake_depth: int
    ordering: OrderingStatistics
    fanout: FanoutStatistics
    lanes: tuple[LaneStatistics, ...]
    consumers: tuple[ConsumerStatistics, ...]
    pool: PoolStatistics
    double_puts: int
    dlq: DeadLetterStatistics


@attrs.define(eq=False)
class _Subscriber:
    lane: Lane
    runtime: ConsumerRuntime
    scope: trio.CancelScope
    finished: trio.Event


@attrs.define(eq=False)
class Pipeline:
    """A running pipeline; get one from :func:`open_pipeline`, never build it directly."""

    config: PipelineConfig
    recycler: Recycler
    pool: EventPool[Event]
    routing: RoutingTable
    dlq: DeadLetterQueue
    wall_clock: Callable[[], int]
    _nursery: trio.Nursery
    _intake: trio.MemorySendChannel[Event]
    _dispatcher: Dispatcher
    _subscribers: dict[str, _Subscriber] = attrs.field(init=False, factory=dict)
    _resync: dict[str, ResyncListener] = attrs.field(init=False, factory=dict)
    _event_ids: Iterator[int] = attrs.field(init=False, factory=lambda: itertools.count(1))
    _closed: bool = attrs.field(init=False, default=False)

    # -- sources ------------------------------------------------------------------

    def new_event(
        self,
        *,
        kind: Kind,
        provider: str = "",
        instrument: str = "",
        seq: int | None = None,
        payload: Payload | None = None,
        trace_id: str | None = None,
        decision_id: str | None = None,
        ingest_ts: int | None = None,
    ) -> Event:
        """A pooled event with a fresh ``event_id``, stamped ``ingest_ts`` now (wall clock).

        Hand it to :meth:`publish`; until then the caller owns it (and recycles it
        through ``pipe.recycler`` if it decides not to publish).

        Raises:
            PoolExhausted: every envelope is lent out. ``publish`` applies
                backpressure long before this in a healthy pipeline.
        """
        try:
            event = self.pool.acquire_nowait()
        except trio.WouldBlock:
            raise PoolExhausted(self.pool.name, self.pool.capacity, 0.0) from None
        event.event_id = next(self._event_ids)
        event.kind = kind
        event.provider = provider
        event.instrument = instrument
        event.seq = seq
        event.payload = payload
        event.trace_id = trace_id
        event.decision_id = decision_id
        event.ingest_ts = self.wall_clock() if ingest_ts is None else ingest_ts
        return event

    async def publish(self, event: Event) -> None:
        """Hand ``event`` to the dispatcher, waiting while the intake is full.

        The pipeline owns the event from the call on, whatever happens: if the call
        is cancelled or the pipeline has closed, the event is recycled here, so a
        source never has to clean up after a failed publish.

        Raises:
            PipelineClosedError: the pipeline has shut down.

        Cancellation:
            Safe: a cancelled publish recycles the event and delivers nothing.
        """
        try:
            await self._intake.send(event)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.recycler.recycle(event)
            raise PipelineClosedError("the pipeline is closed") from None
        except BaseException:
            self.recycler.recycle(event)
            raise

    def publish_nowait(self, event: Event) -> None:
        """Like :meth:`publish` without waiting.

        Raises:
            trio.WouldBlock: the intake is full; the caller keeps the event (and
                typically falls back to ``await publish(event)``).
            PipelineClosedError: the pipeline has shut down (the event is recycled).
        """
        try:
            self._intake.send_nowait(event)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.recycler.recycle(event)
            raise PipelineClosedError("the pipeline is closed") from None

    def on_resync(self, provider: str, listener: ResyncListener) -> None:
        """Register the callback told when ``provider`` must resend a book.

        It is called (instrument, reason) on a sequence gap or when a lane had to
        drop one of the book's deltas; it must not block.
        """
        self._resync[provider] = listener

    def _request_resync(self, provider: str, instrument: str, reason: str) -> None:
        listener = self._resync.get(provider)
        if listener is None:
            log.warning(
                "no resync listener for %s; %s needs a snapshot: %s", provider, instrument, reason
            )
            return
        listener(instrument, reason)

    # -- consumers ----------------------------------------------------------------

    async def subscribe(
        self,
        consumer_id: str,
        fn: Handler,
        *,
        instruments: Iterable[str] | str | None = None,
        kinds: Iterable[Kind | str] | Kind | None = None,
        providers: Iterable[str] | str | None = None,
        lane_capacity: int | None = None,
    ) -> int:
        """Start delivering matching events to ``fn(event, ctx)``; returns the routing version.

        ``None`` for a filter means every value. Subscribing an existing consumer
        with the same function replaces its filters (idempotent); its lane and task
        stay.

        Raises:
            ConsumerExistsError: the id is subscribed with another function.
            PipelineClosedError: the pipeline has shut down.
            ValueError: an unknown kind, or a ``lane_capacity`` below 1.
        """
        if self._closed:
            raise PipelineClosedError("the pipeline is closed")
        subscription = Subscription(
            consumer_id=consumer_id, instruments=instruments, kinds=kinds, providers=providers
        )
        existing = self._subscribers.get(consumer_id)
        if existing is not None:
            # ==, not `is`: each `obj.method` access builds a new (equal) bound method.
            if existing.runtime.fn != fn:
                raise ConsumerExistsError(consumer_id)
            return self.routing.set(subscription, existing.lane)
        lane = Lane(
            consumer_id,
            self.config.lane_capacity if lane_capacity is None else lane_capacity,
            self.recycler,
            on_book_lost=self._book_lost,
            wall_clock=self.wall_clock,
        )
        runtime = ConsumerRuntime(
            consumer_id,
            fn,
            lane,
            self.recycler,
            self.dlq,
            self.wall_clock,
            on_start=self._dispatcher.spread.started,
        )
        subscriber = _Subscriber(lane, runtime, trio.CancelScope(), trio.Event())
        self._subscribers[consumer_id] = subscriber
        try:
            await self._nursery.start(self._run_consumer, subscriber)
        except BaseException:
            # Cancelled while starting: leave no half-made consumer behind (a later
            # subscribe would route to a lane that nobody drains).
            self._discard(consumer_id, subscriber, "its subscribe was cancelled")
            raise
        if self._subscribers.get(consumer_id) is not subscriber:
            return self.routing.version  # unsubscribed while it was starting
        return self.routing.set(subscription, lane)

    def _discard(self, consumer_id: str, subscriber: _Subscriber, reason: str) -> None:
        if self._subscribers.get(consumer_id) is subscriber:
            del self._subscribers[consumer_id]
        subscriber.lane.close()
        subscriber.scope.cancel(reason=f"consumer {consumer_id}: {reason}")

    async def _run_consumer(
        self, subscriber: _Subscriber, *, task_status: trio.TaskStatus[None]
    ) -> None:
        try:
            with subscriber.scope:
                await subscriber.runtime.serve(task_status=task_status)
        finally:
            subscriber.finished.set()

    def _book_lost(self, provider: str, instrument: str) -> None:
        self._request_resync(provider, instrument, "a subscriber's lane dropped a book delta")

    async def unsubscribe(self, consumer_id: str) -> int:
        """Stop a consumer: no more routing, its queue recycled, its task ended.

        Returns the new routing version.

        Raises:
            KeyError: no such consumer.
        """
        subscriber = self._subscribers.pop(consumer_id)
        # A consumer whose subscribe is still starting has no route yet.
        if self.routing.subscription(consumer_id) is None:
            version = self.routing.version
        else:
            version = self.routing.remove(consumer_id)
        self._discard(consumer_id, subscriber, "unsubscribed")
        await subscriber.finished.wait()
        return version

    # -- observing ----------------------------------------------------------------

    def statistics(self) -> PipelineStatistics:
        """A snapshot of every component."""
        subscribers = list(self._subscribers.values())
        return PipelineStatistics(
            routing_version=self.routing.version,
            subscribers=len(subscribers),
            intake_depth=self._intake.statistics().current_buffer_used,
            ordering=self._dispatcher.orderer.statistics(),
            fanout=self._dispatcher.statistics(),
            lanes=tuple(s.lane.statistics() for s in subscribers),
            consumers=tuple(s.runtime.statistics() for s in subscribers),
            pool=self.pool.statistics(),
            double_puts=self.recycler.statistics().double_puts,
            dlq=self.dlq.statistics(),
        )

    async def wait_idle(self) -> None:
        """Wait until everything published so far has been handled and recycled.

        Idle means no envelope of the pipeline's pool is lent out, so call it while
        holding none yourself. Meant for tests, benchmarks and orderly shutdowns.
        """
        # Polling keeps the hot path free of idle bookkeeping; this is not a hot path.
        while self.pool.statistics().in_use or self.pool.statistics().heap_in_use:  # noqa: ASYNC110
            await trio.sleep(IDLE_POLL)

    def _shut_down(self) -> None:
        """After every task has ended: recycle what the lanes still hold."""
        self._closed = True
        self._intake.close()
        for subscriber in self._subscribers.values():
            subscriber.lane.close()


@asynccontextmanager
async def open_pipeline(
    config: PipelineConfig | None = None,
    *,
    recycler: Recycler | None = None,
    wall_clock: Callable[[], int] = time.time_ns,
) -> AsyncIterator[Pipeline]:
    """Run a pipeline for the duration of the ``async with`` block.

    Leaving the block cancels every task the pipeline started and returns every
    envelope still inside to its pool. A crash in the dispatcher ends the block
    with that error; a consumer's exception never does (it goes to the DLQ).

    Args:
        config: settings; defaults throughout when None.
        recycler: share one with other components; a new one (debug per config) if None.
        wall_clock: ns since the epoch, for event timestamps; injectable for tests.
    """
    config = config or PipelineConfig()
    recycler = recycler or Recycler(debug=config.debug)
    pool = EventPool(
        Event,
        recycler=recycler,
        capacity=config.pool_capacity,
        on_exhausted=config.on_pool_exhausted,
        max_wait=config.pool_max_wait,
        name="pipeline",
    )
    send, receive = trio.open_memory_channel[Event](config.intake_capacity)
    routing = RoutingTable()
    pipeline: Pipeline | None = None

    def report_gap(provider: str, instrument: str, reason: str) -> None:
        if pipeline is not None:
            pipeline._request_resync(provider, instrument, reason)

    orderer = Orderer(
        recycler,
        report_gap,
        window=config.reorder_window,
        max_lateness=config.max_lateness,
        idle_ttl=config.stream_idle_ttl,
    )
    dispatcher = Dispatcher(receive, pool, recycler, routing, orderer, wall_clock)
    try:
        async with trio.open_nursery() as nursery:
            pipeline = Pipeline(
                config,
                recycler,
                pool,
                routing,
                DeadLetterQueue(config.dlq_capacity),
                wall_clock,
                nursery,
                send,
                dispatcher,
            )
            await nursery.start(dispatcher.serve)
            try:
                yield pipeline
            finally:
                nursery.cancel_scope.cancel(reason="the pipeline's block ended")
    finally:
        with send:
            if pipeline is not None:
                pipeline._shut_down()
