"""The consumer runtime: one task per subscriber that drains its lane through its function."""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeAlias

import attrs
import trio

from meltica_trio._defaults import LATENCY_EXACT_BATCH, LATENCY_SAMPLE_MASK, SPREAD_SAMPLE_MASK
from meltica_trio.bus import Lane
from meltica_trio.events import CRITICAL_KINDS, Event
from meltica_trio.lifecycle import Recycler
from meltica_trio.telemetry import DeadLetterQueue, LatencyHistogram, LatencySummary, log_fields

from ._context import ConsumerContext

log = logging.getLogger(__name__)


Handler: TypeAlias = Callable[[Event, ConsumerContext], Awaitable[None] | None]
"""A consumer: ``fn(event, ctx)``, sync or ``async def``; its return value is ignored."""


def is_async_handler(fn: Handler) -> bool:
    """Whether ``fn`` must be awaited (coroutine functions and callables with one)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 (an object whose __call__ is async)
    )


@attrs.frozen(kw_only=True)
class ConsumerStatistics:
    """A snapshot of one consumer.

    Attributes:
        consumer_id: the subscriber.
        handled: events passed to the function (counted per batch, before the calls).
        failed: calls that raised (each one is in the DLQ).
        skipped_old_version: market data skipped for a routing version below ``min_version``.
        min_version: the lowest routing version whose market data it accepts.
        delivery: wall-clock time from ingest to the function's start (sampled under load).
        handler: time spent in the function per event (one event in 16, by event id).
    """

    consumer_id: str
    handled: int
    failed: int
    skipped_old_version: int
    min_version: int
    delivery: LatencySummary
    handler: LatencySummary


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class ConsumerRuntime:
    """Runs one consumer function over its lane, in batches, isolating its failures.

    Every delivered event is recycled on every exit path: after the function
    returns or raises, and when the task is cancelled mid-batch. An exception
    becomes a DLQ entry and a log line with the event's context; the consumer
    then goes on with the next event.
    """

    consumer_id: str
    fn: Handler
    lane: Lane
    recycler: Recycler
    dlq: DeadLetterQueue
    wall_clock: Callable[[], int]
    context: ConsumerContext = attrs.field(kw_only=True)
    on_start: Callable[[Event, int], None] | None = attrs.field(default=None, kw_only=True)
    """Told when the function starts on a sampled event (for the fan-out spread)."""
    min_version: int = attrs.field(default=0, kw_only=True)
    _is_async: bool = attrs.field(init=False)
    _handled: int = attrs.field(init=False, default=0)
    _failed: int = attrs.field(init=False, default=0)
    _skipped: int = attrs.field(init=False, default=0)
    _delivery: LatencyHistogram = attrs.field(init=False, factory=LatencyHistogram)
    _handler: LatencyHistogram = attrs.field(init=False, factory=LatencyHistogram)

    @context.default
    def _bare_context(self) -> ConsumerContext:
        return ConsumerContext(self.consumer_id)

    def __attrs_post_init__(self) -> None:
        self._is_async = is_async_handler(self.fn)

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Drain the lane until it is closed or this task is cancelled."""
        task_status.started()
        while True:
            try:
                batch = await self.lane.take_batch()
            except trio.EndOfChannel:
                return
            if not self._is_async:
                self.run_batch(batch)
                continue
            try:
                await self._run_async(batch)
            finally:
                # Every exit path: the batch is done, raised, or was cancelled part-way.
                self.recycler.recycle_all(batch)

    @property
    def is_async(self) -> bool:
        """Whether the function is awaited (it then needs a task of its own)."""
        return self._is_async

    def run_batch(self, batch: deque[Event]) -> None:
        """Run a sync consumer over ``batch``, then recycle the whole batch, whatever happens."""
        try:
            self.run_events(batch)
        finally:
            self.recycler.recycle_all(batch)

    # Events are recycled together when the batch is over (above), which keeps two
    # calls per delivery out of these loops; a handler's event stays valid until then.
    #
    # Timing every event would cost more than a trivial handler. The delivery latency
    # (ingest to start, the pipeline's promise) is timed for every event of a short
    # batch, since light traffic is where latency matters most, and for one event in
    # LATENCY_SAMPLE_MASK + 1 (by event id) of a longer one. The handler's own
    # duration, a property of the consumer rather than of the load, is always timed
    # on that 1-in-16 sample; the spread sample (1 in 64) lies within it.

    def run_events(self, batch: deque[Event]) -> None:
        """Run a sync consumer over ``batch``; the caller recycles the batch afterwards."""
        fn, ctx, clock = self.fn, self.context, self.wall_clock
        delivery, handler, on_start = self._delivery.record, self._handler.record, self.on_start
        min_version = self.min_version
        mask = 0 if len(batch) <= LATENCY_EXACT_BATCH else LATENCY_SAMPLE_MASK
        self._handled += len(batch)
        for event in batch:
            try:
                if event.routing_version < min_version and self._too_old(event):
                    continue
                event_id = event.event_id
                if event_id & mask:
                    result = fn(event, ctx)
                else:
                    start = clock()
                    delivery(start - event.ingest_ts)
                    sampled = not event_id & LATENCY_SAMPLE_MASK
                    if sampled and on_start is not None and not event_id & SPREAD_SAMPLE_MASK:
                        on_start(event, start)
                    result = fn(event, ctx)
                    if sampled:
                        handler(clock() - start)
                if result is not None:
                    self._returned_value()
            except Exception as exc:
                self._fail(event, exc)

    async def _run_async(self, batch: deque[Event]) -> None:
        fn, ctx, clock = self.fn, self.context, self.wall_clock
        delivery, handler, on_start = self._delivery.record, self._handler.record, self.on_start
        mask = 0 if len(batch) <= LATENCY_EXACT_BATCH else LATENCY_SAMPLE_MASK
        self._handled += len(batch)
        for event in batch:
            try:
                if event.routing_version < self.min_version and self._too_old(event):
                    continue
                event_id = event.event_id
                if event_id & mask:
                    await fn(event, ctx)  # type: ignore[misc]
                    continue
                start = clock()
                delivery(start - event.ingest_ts)
                sampled = not event_id & LATENCY_SAMPLE_MASK
                if sampled and on_start is not None and not event_id & SPREAD_SAMPLE_MASK:
                    on_start(event, start)
                await fn(event, ctx)  # type: ignore[misc]
                if sampled:
                    handler(clock() - start)
            except Exception as exc:
                self._fail(event, exc)

    def _too_old(self, event: Event) -> bool:
        """Market data routed under a version this consumer no longer accepts."""
        if event.kind in CRITICAL_KINDS:
            return False
        self._skipped += 1
        self._handled -= 1
        return True

    def _returned_value(self) -> None:
        raise TypeError(
            f"consumer {self.consumer_id!r} returned a value from a sync function; "
            "declare it `async def` if it awaits"
        )

    def _fail(self, event: Event, exc: Exception) -> None:
        self._failed += 1
        letter = self.dlq.record(self.consumer_id, event, exc, self.wall_clock())
        # A consumer failing on every event must not flood the log: failures 1, 2, 4,
        # 8, ... are logged (the first with its traceback); every one is in the DLQ.
        if self._failed & (self._failed - 1) == 0:
            log.error(
                "consumer %s failed on %s %s %s seq=%s trace_id=%s: %s (failure #%d, all in DLQ)",
                self.consumer_id,
                letter.kind,
                letter.provider,
                letter.instrument,
                letter.seq,
                letter.trace_id,
                letter.error,
                self._failed,
                exc_info=exc if self._failed == 1 else None,
                extra=log_fields(
                    trace_id=letter.trace_id,
                    decision_id=letter.decision_id,
                    consumer=self.consumer_id,
                    provider=letter.provider or None,
                    instrument=letter.instrument or None,
                    letter_id=letter.letter_id,
                    event_id=letter.event_id,
                    kind=letter.kind,
                    seq=letter.seq,
                ),
            )

    def statistics(self) -> ConsumerStatistics:
        """A snapshot of this consumer's counters and latencies."""
        handler = self._handler.summary()
        return ConsumerStatistics(
            consumer_id=self.consumer_id,
            handled=self._handled,
            failed=self._failed,
            skipped_old_version=self._skipped,
            min_version=self.min_version,
            delivery=self._delivery.summary(),
            handler=handler,
        )
