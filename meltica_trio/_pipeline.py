"""``open_pipeline``: the nursery that owns the dispatcher, the control bus and the consumers."""

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
from meltica_trio._errors import (
    CommandRefusedError,
    ConsumerExistsError,
    PipelineClosedError,
    PoolExhausted,
)
from meltica_trio.bus import (
    ControlBus,
    ControlStatistics,
    LaneStatistics,
    SetTradingSwitch,
    Subscribe,
    Unsubscribe,
)
from meltica_trio.bus._client import ControlClient
from meltica_trio.bus._commands import (
    ConfigureMerge,
    FlipRouting,
    StageRouting,
    SubscribeMerged,
)
from meltica_trio.consumers import ConsumerRegistry, ConsumerStatistics, Handler
from meltica_trio.dispatcher import (
    Dispatcher,
    FanoutStatistics,
    Orderer,
    OrderingStatistics,
    RoutingControl,
    RoutingTable,
)
from meltica_trio.events import ControlAck, ControlResult, Event, ExecReport, Kind, Payload
from meltica_trio.lifecycle import EventPool, PoolStatistics, Recycler
from meltica_trio.orchestrator import MergeControl, Merger, MergeStatistics
from meltica_trio.orders import (
    GatewayStatistics,
    MemoryLedger,
    OrderGateway,
    OrderLedger,
    VenueOrderClient,
)
from meltica_trio.telemetry import (
    DeadLetterQueue,
    DeadLetterStatistics,
    MetricsServer,
    PipelineCollector,
    serve_dead_letter_file,
    serve_metrics,
)

log = logging.getLogger(__name__)

ResyncListener = Callable[[str, str], None]
"""Told (instrument, reason) when the pipeline needs a fresh book from a provider."""

_CONTROL_ACK = Kind.CONTROL_ACK
_CONTROL_RESULT = Kind.CONTROL_RESULT
_EXEC_REPORT = Kind.EXEC_REPORT


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
    control: ControlStatistics
    merge: MergeStatistics
    orders: GatewayStatistics


@attrs.define(eq=False)
class Pipeline:
    """A running pipeline; get one from :func:`open_pipeline`, never build it directly.

    Attributes:
        config: the settings it runs with.
        recycler: takes every envelope back (use it for events you do not publish).
        pool: lends the pipeline's envelopes.
        routing: the routing table (read it; change it through ``control``).
        merger: the orchestrator's windowed merge.
        dlq: what consumers failed on.
        control: send commands and get both answers (``await pipe.control.subscribe(...)``).
        metrics: the Prometheus endpoint when ``config.metrics_port`` is set (its
            ``url``; ``watch(provider)`` adds a provider's statistics), else None.
    """

    config: PipelineConfig
    recycler: Recycler
    pool: EventPool[Event]
    routing: RoutingTable
    merger: Merger
    dlq: DeadLetterQueue
    wall_clock: Callable[[], int]
    _nursery: trio.Nursery
    _intake: trio.MemorySendChannel[Event]
    _dispatcher: Dispatcher
    _bus: ControlBus
    _gateway: OrderGateway
    _event_ids: Iterator[int]
    control: ControlClient = attrs.field(init=False)
    _consumers: ConsumerRegistry = attrs.field(init=False)
    _resync: dict[str, ResyncListener] = attrs.field(init=False, factory=dict)
    _declared: set[str] = attrs.field(init=False, factory=set)
    _closed: bool = attrs.field(init=False, default=False)
    metrics: MetricsServer | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self.control = ControlClient(self._bus)
        self._consumers = ConsumerRegistry(
            self.recycler,
            self.dlq,
            self.wall_clock,
            self._book_lost,
            self._dispatcher.spread.started,
            self._bus,
            self._deliver_answer,
        )
        merges = MergeControl(self.merger)
        routing = RoutingControl(
            self.routing, self._consumers.get, self._instrument_universe, merges.merged_problem
        )
        for command in (Subscribe, Unsubscribe, SubscribeMerged, StageRouting, FlipRouting):
            self._bus.register(command, routing)
        self._bus.register(SetTradingSwitch, self._consumers)
        self._bus.register(ConfigureMerge, merges)
        self._gateway.register(self._bus)

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
        """Register ``fn(event, ctx)`` (if new) and subscribe it; returns the routing version.

        ``None`` for a filter means every value. The subscription goes through the
        control bus like any Subscribe command; subscribing an existing consumer
        with the same function replaces its filters (idempotent); its lane and task
        stay.

        Raises:
            ConsumerExistsError: the id is subscribed with another function.
            CommandRefusedError: the control plane refused the subscription (an
                unknown instrument, say); a consumer registered by this call is
                removed again.
            PipelineClosedError: the pipeline has shut down.
            ValueError: an unknown kind, or a ``lane_capacity`` below 1.
        """
        if self._closed:
            raise PipelineClosedError("the pipeline is closed")
        command = Subscribe(
            consumer_id=consumer_id, instruments=instruments, kinds=kinds, providers=providers
        )
        existing = self._consumers.get(consumer_id)
        if existing is not None and existing.fn != fn:
            # ==, not `is`: each `obj.method` access builds a new (equal) bound method.
            raise ConsumerExistsError(consumer_id)
        started = existing is None
        if existing is None:
            capacity = self.config.lane_capacity if lane_capacity is None else lane_capacity
            existing = await self._consumers.start(self._nursery, consumer_id, fn, capacity)
        reply = await self._bus.request(command)
        if not reply.result.ok:
            # Only a consumer this call registered goes: a refused change of filters
            # leaves a running consumer as it was.
            if (
                started
                and reply.ack.accepted is False
                and self._consumers.get(consumer_id) is existing
            ):
                self._consumers.stop(consumer_id, existing, "its subscription was refused")
            raise CommandRefusedError(reply.result.command, reply.result.reason or "refused")
        return self.routing.version

    async def unsubscribe(self, consumer_id: str) -> int:
        """Stop a consumer: no more routing, its queue recycled, its task ended.

        Returns the new routing version.

        Raises:
            KeyError: no such consumer.
        """
        consumer = self._consumers.get(consumer_id)
        if consumer is None:
            raise KeyError(consumer_id)
        # Stopped first, so a Subscribe of its still in flight is refused ("unknown
        # consumer") rather than handled between this Unsubscribe and the stop,
        # which would leave a route to a closed lane.
        self._consumers.stop(consumer_id, consumer, "unsubscribed")
        await self._bus.request(Unsubscribe(consumer_id=consumer_id))
        await consumer.finished.wait()
        return self.routing.version

    def declare_instruments(self, provider: str, instruments: Iterable[str]) -> None:
        """Add ``provider``'s instruments to those subscriptions may name."""
        self._declared.update(instruments)

    def _instrument_universe(self) -> frozenset[str] | None:
        universe = self._declared.union(self.config.instruments)
        return frozenset(universe) if universe else None

    def _book_lost(self, provider: str, instrument: str) -> None:
        self._request_resync(provider, instrument, "a subscriber's lane dropped a book delta")

    def _deliver_answer(self, consumer_id: str, answer: ControlAck | ControlResult) -> None:
        """Put a control answer in the consumer's lane (critical: never dropped)."""
        consumer = self._consumers.get(consumer_id)
        if consumer is not None:
            kind = _CONTROL_ACK if isinstance(answer, ControlAck) else _CONTROL_RESULT
            consumer.lane.put(self._direct_event(kind, answer, provider="control"))

    def _deliver_report(
        self,
        consumer_id: str,
        report: ExecReport,
        decision_id: str | None,
        trace_id: str | None,
    ) -> None:
        """Put an execution report in its owner's lane (critical: never dropped)."""
        consumer = self._consumers.get(consumer_id)
        if consumer is None:
            log.warning("exec report %s for %r, which is gone", report.exec_id, consumer_id)
            return
        order = self._gateway.order_of(consumer_id, report.client_order_id)
        event = self._direct_event(
            _EXEC_REPORT,
            report,
            provider=order.provider if order else "",
            instrument=order.instrument if order else "",
        )
        event.decision_id, event.trace_id = decision_id, trace_id
        consumer.lane.put(event)

    def _direct_event(
        self, kind: Kind, payload: Payload, *, provider: str, instrument: str = ""
    ) -> Event:
        """An event for one consumer's lane, bypassing routing; it never waits or fails.

        Answers and execution reports are critical: the pool lends from the heap
        rather than let them wait for an envelope.
        """
        event = self.pool.acquire_or_allocate()
        event.event_id = next(self._event_ids)
        event.kind = kind
        event.provider = provider
        event.instrument = instrument
        event.payload = payload
        event.ingest_ts = event.emit_ts = self.wall_clock()
        event.routing_version = self.routing.version
        return event

    # -- observing ----------------------------------------------------------------

    def statistics(self) -> PipelineStatistics:
        """A snapshot of every component."""
        consumers = list(self._consumers)
        return PipelineStatistics(
            routing_version=self.routing.version,
            subscribers=len(consumers),
            intake_depth=self._intake.statistics().current_buffer_used,
            ordering=self._dispatcher.orderer.statistics(),
            fanout=self._dispatcher.statistics(),
            lanes=tuple(c.lane.statistics() for c in consumers),
            consumers=tuple(c.runtime.statistics() for c in consumers),
            pool=self.pool.statistics(),
            double_puts=self.recycler.statistics().double_puts,
            dlq=self.dlq.statistics(),
            control=self._bus.statistics(),
            merge=self.merger.statistics(),
            orders=self._gateway.statistics(),
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
        self._bus.close()
        self._consumers.close_all()


@asynccontextmanager
async def open_pipeline(
    config: PipelineConfig | None = None,
    *,
    recycler: Recycler | None = None,
    wall_clock: Callable[[], int] = time.time_ns,
    order_clients: Iterable[VenueOrderClient] = (),
    order_ledger: OrderLedger | None = None,
) -> AsyncIterator[Pipeline]:
    """Run a pipeline for the duration of the ``async with`` block.

    Leaving the block cancels every task the pipeline started and returns every
    envelope still inside to its pool. A crash in the dispatcher ends the block
    with that error; a consumer's exception never does (it goes to the DLQ).

    Args:
        config: settings; defaults throughout when None.
        recycler: share one with other components; a new one (debug per config) if None.
        wall_clock: ns since the epoch, for event timestamps; injectable for tests.
        order_clients: the venues orders can go to (``open_binance_orders(...)``);
            without any, order commands are refused with the reason.
        order_ledger: where the order gateway remembers accepted orders; in memory
            if None. A shared one (``meltica_trio.bridge.open_redis_ledger``) makes a
            restarted or second gateway refuse duplicates too.
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
    event_ids = itertools.count(1)
    merger = Merger(pool, recycler, config.merges, next_event_id=event_ids.__next__)
    pipeline: Pipeline | None = None

    def report_gap(provider: str, instrument: str, reason: str) -> None:
        if pipeline is not None:
            pipeline._request_resync(provider, instrument, reason)

    def deliver(consumer_id: str, answer: ControlAck | ControlResult) -> None:
        if pipeline is not None:
            pipeline._deliver_answer(consumer_id, answer)

    orderer = Orderer(
        recycler,
        report_gap,
        window=config.reorder_window,
        max_lateness=config.max_lateness,
        idle_ttl=config.stream_idle_ttl,
    )
    dispatcher = Dispatcher(receive, pool, recycler, routing, orderer, merger, wall_clock)

    def deliver_report(
        consumer_id: str, report: ExecReport, decision_id: str | None, trace_id: str | None
    ) -> None:
        if pipeline is not None:
            pipeline._deliver_report(consumer_id, report, decision_id, trace_id)

    bus = ControlBus(deliver, lambda: routing.version)
    gateway = OrderGateway(order_clients, deliver_report, ledger=order_ledger or MemoryLedger())
    try:
        async with trio.open_nursery() as nursery:
            pipeline = Pipeline(
                config,
                recycler,
                pool,
                routing,
                merger,
                DeadLetterQueue(config.dlq_capacity),
                wall_clock,
                nursery,
                send,
                dispatcher,
                bus,
                gateway,
                event_ids,
            )
            await nursery.start(dispatcher.serve)
            await nursery.start(bus.serve)
            await nursery.start(gateway.serve)
            if config.dlq_path is not None:
                await nursery.start(serve_dead_letter_file, pipeline.dlq, config.dlq_path)
            if config.metrics_port is not None:
                pipeline.metrics = await nursery.start(
                    serve_metrics,
                    PipelineCollector(pipeline),
                    config.metrics_host,
                    config.metrics_port,
                )
            try:
                yield pipeline
            finally:
                nursery.cancel_scope.cancel(reason="the pipeline's block ended")
    finally:
        with send:
            if pipeline is not None:
                pipeline._shut_down()
