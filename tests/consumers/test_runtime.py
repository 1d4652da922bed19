"""ConsumerRuntime driven directly: calls, failures to the DLQ, recycling, versions, stats."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator

import attrs
import pytest
import trio
import trio.testing

from meltica_trio import (
    ConsumerContext,
    Event,
    EventPool,
    Kind,
    Recycler,
    UseAfterRecycleError,
)
from meltica_trio._defaults import LATENCY_EXACT_BATCH, LATENCY_SAMPLE_MASK
from meltica_trio.bus import Lane
from meltica_trio.consumers import ConsumerRuntime, Handler
from meltica_trio.consumers._runtime import is_async_handler
from meltica_trio.telemetry import DeadLetterQueue

_LOGGER = "meltica_trio.consumers._runtime"

Body = Callable[[Event, ConsumerContext], object]
"""What a test handler does with each event, whatever its style."""


class WallClock:
    """A fake wall clock in ns that moves 1 µs per reading."""

    def __init__(self, start: int = 1_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1_000
        return self.now


def _handler(style: str, body: Body) -> Handler:
    """``body`` as a sync function or an async one (which checkpoints before the body)."""
    if style == "sync":

        def sync_handler(event: Event, ctx: ConsumerContext) -> None:
            body(event, ctx)

        return sync_handler

    async def async_handler(event: Event, ctx: ConsumerContext) -> None:
        await trio.lowlevel.checkpoint()
        body(event, ctx)

    return async_handler


STYLES = pytest.mark.parametrize("style", ["sync", "async"])


@attrs.define(eq=False)
class Harness:
    """A lane, pool and DLQ around one runtime, all on the test's debug recycler."""

    recycler: Recycler
    pool: EventPool[Event]
    lane: Lane
    dlq: DeadLetterQueue
    clock: WallClock
    lost_books: list[tuple[str, str]] = attrs.field(factory=list)

    def runtime(
        self,
        fn: Handler,
        *,
        min_version: int = 0,
        on_start: Callable[[Event, int], None] | None = None,
    ) -> ConsumerRuntime:
        return ConsumerRuntime(
            "strategy-1",
            fn,
            self.lane,
            self.recycler,
            self.dlq,
            self.clock,
            on_start=on_start,
            min_version=min_version,
        )

    def event(
        self,
        event_id: int,
        *,
        kind: Kind = Kind.TRADE,
        routing_version: int = 1,
        provider: str = "binance",
        instrument: str = "BTC-USDT",
    ) -> Event:
        event = self.pool.acquire_nowait()
        event.event_id = event_id
        event.kind = kind
        event.provider = provider
        event.instrument = instrument
        event.seq = event_id
        event.trace_id = f"trace-{event_id}"
        event.routing_version = routing_version
        event.ingest_ts = self.clock()
        return event

    def put(self, *event_ids: int) -> None:
        for event_id in event_ids:
            # Distinct streams, so the lane neither coalesces nor drops anything.
            self.lane.put(self.event(event_id, instrument=f"I-{event_id}"))

    def outstanding(self) -> int:
        return len(self.recycler.leak_report().leases)


@pytest.fixture
def harness(recycler: Recycler) -> Iterator[Harness]:
    clock = WallClock()
    lost: list[tuple[str, str]] = []
    lane = Lane(
        "strategy-1",
        1024,
        recycler,
        on_book_lost=lambda provider, instrument: lost.append((provider, instrument)),
        wall_clock=clock,
    )
    pool = EventPool(Event, recycler=recycler, capacity=1024, name="runtime-test")
    yield Harness(recycler, pool, lane, DeadLetterQueue(capacity=100), clock, lost)
    lane.close()


async def _run_until_blocked(runtime: ConsumerRuntime, nursery: trio.Nursery) -> None:
    await nursery.start(runtime.serve)
    await trio.testing.wait_all_tasks_blocked()


# -- calls ----------------------------------------------------------------------


@STYLES
async def test_handler_is_called_with_each_event_and_the_context_in_order(
    harness: Harness, style: str
) -> None:
    calls: list[tuple[int, ConsumerContext]] = []
    runtime = harness.runtime(_handler(style, lambda e, ctx: calls.append((e.event_id, ctx))))
    harness.put(1, 2, 3)
    async with trio.open_nursery() as nursery:
        await _run_until_blocked(runtime, nursery)
        assert [event_id for event_id, _ in calls] == [1, 2, 3]
        assert all(ctx is runtime.context for _, ctx in calls)
        assert runtime.context.consumer_id == "strategy-1"

        harness.put(4, 5)  # a second batch, after the runtime went back to waiting
        await trio.testing.wait_all_tasks_blocked()
        assert [event_id for event_id, _ in calls] == [1, 2, 3, 4, 5]
        harness.lane.close()  # the runtime ends when its lane closes
    assert harness.outstanding() == 0


@STYLES
async def test_every_event_is_recycled_after_the_handler_returns(
    harness: Harness, style: str
) -> None:
    kept: list[Event] = []
    runtime = harness.runtime(_handler(style, lambda e, ctx: kept.append(e)))
    harness.put(1, 2)
    async with trio.open_nursery() as nursery:
        await _run_until_blocked(runtime, nursery)
        assert len(kept) == 2
        assert harness.outstanding() == 0
        for event in kept:
            with pytest.raises(UseAfterRecycleError):
                _ = event.event_id
        nursery.cancel_scope.cancel()


def test_an_object_with_an_async_call_method_is_an_async_handler() -> None:
    class Strategy:
        async def __call__(self, event: Event, ctx: ConsumerContext) -> None:
            await trio.lowlevel.checkpoint()

    def plain(event: Event, ctx: ConsumerContext) -> None:
        return None

    assert is_async_handler(Strategy())
    assert not is_async_handler(plain)


async def test_an_object_with_an_async_call_method_is_awaited(harness: Harness) -> None:
    seen: list[int] = []

    class Strategy:
        async def __call__(self, event: Event, ctx: ConsumerContext) -> None:
            await trio.lowlevel.checkpoint()
            seen.append(event.event_id)

    runtime = harness.runtime(Strategy())
    harness.put(1, 2)
    async with trio.open_nursery() as nursery:
        await _run_until_blocked(runtime, nursery)
        nursery.cancel_scope.cancel()
    assert seen == [1, 2]
    assert runtime.statistics().failed == 0


async def test_an_async_handler_may_return_a_value(harness: Harness) -> None:
    async def returns(event: Event, ctx: ConsumerContext) -> int:
        await trio.lowlevel.checkpoint()
        return 42

    runtime = harness.runtime(returns)  # type: ignore[arg-type]
    harness.put(1)
    async with trio.open_nursery() as nursery:
        await _run_until_blocked(runtime, nursery)
        nursery.cancel_scope.cancel()
    assert len(harness.dlq) == 0
    assert runtime.statistics().handled == 1


# -- failures -------------------------------------------------------------------


@STYLES
async def test_an_exception_becomes_a_dlq_entry_and_the_consumer_goes_on(
    harness: Harness, style: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    def body(event: Event, ctx: ConsumerContext) -> None:
        seen.append(event.event_id)
        if event.event_id in (2, 4):
            raise ValueError(f"bad tick {event.event_id}")

    runtime = harness.runtime(_handler(style, body))
    harness.put(1, 2, 3, 4, 5)
    with caplog.at_level(logging.ERROR, logger=_LOGGER):
        async with trio.open_nursery() as nursery:
            await _run_until_blocked(runtime, nursery)
            nursery.cancel_scope.cancel()

    assert seen == [1, 2, 3, 4, 5]
    first, second = harness.dlq.entries()
    assert first.consumer_id == "strategy-1"
    assert first.trace_id == "trace-2"
    assert (first.event_id, first.kind, first.provider, first.instrument, first.seq) == (
        2,
        "trade",
        "binance",
        "I-2",
        2,
    )
    assert first.error == "ValueError: bad tick 2"
    assert first.traceback.startswith("Traceback (most recent call last):")
    assert "in body" in first.traceback
    assert "ValueError: bad tick 2" in first.traceback
    assert second.event_id == 4
    assert second.wall_ns > first.wall_ns > 0

    records = [r for r in caplog.records if r.name == _LOGGER]
    assert [r.levelno for r in records] == [logging.ERROR, logging.ERROR]
    message = records[0].getMessage()
    for context in ("strategy-1", "trade", "binance", "I-2", "seq=2", "trace_id=trace-2"):
        assert context in message
    assert "ValueError: bad tick 2" in message
    assert records[0].exc_info is not None  # the first failure logs its traceback
    assert "trace_id=trace-4" in records[1].getMessage()

    stats = runtime.statistics()
    assert (stats.handled, stats.failed) == (5, 2)
    assert harness.outstanding() == 0


async def test_a_consumer_failing_on_every_event_logs_powers_of_two_but_dlqs_all(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    def always(event: Event, ctx: ConsumerContext) -> None:
        raise ValueError("no")

    runtime = harness.runtime(always)
    harness.put(*range(1, 11))
    with caplog.at_level(logging.ERROR, logger=_LOGGER):
        async with trio.open_nursery() as nursery:
            await _run_until_blocked(runtime, nursery)
            nursery.cancel_scope.cancel()

    assert len(harness.dlq) == 10
    records = [r for r in caplog.records if r.name == _LOGGER]
    logged = [re.findall(r"seq=(\d+) .*failure #(\d+)", r.getMessage()) for r in records]
    assert logged == [[("1", "1")], [("2", "2")], [("4", "4")], [("8", "8")]]
    assert [r.exc_info is not None for r in records] == [True, False, False, False]


@pytest.mark.parametrize("batch", [1, 40], ids=["timed", "sampled"])
async def test_a_sync_handler_returning_a_value_is_a_type_error_in_the_dlq(
    harness: Harness, batch: int, caplog: pytest.LogCaptureFixture
) -> None:
    def returns(event: Event, ctx: ConsumerContext) -> object:
        return "oops"

    runtime = harness.runtime(returns)  # type: ignore[arg-type]
    harness.put(*range(1, batch + 1))
    with caplog.at_level(logging.CRITICAL, logger=_LOGGER):
        async with trio.open_nursery() as nursery:
            await _run_until_blocked(runtime, nursery)
            nursery.cancel_scope.cancel()

    letters = harness.dlq.entries()
    assert len(letters) == batch
    assert all(letter.error.startswith("TypeError: ") for letter in letters)
    assert "returned a value from a sync function" in letters[0].error
    assert "'strategy-1'" in letters[0].error
    assert runtime.statistics().failed == batch
    assert harness.outstanding() == 0


@STYLES
async def test_every_event_is_recycled_after_the_handler_raises(
    harness: Harness, style: str, caplog: pytest.LogCaptureFixture
) -> None:
    kept: list[Event] = []

    def body(event: Event, ctx: ConsumerContext) -> None:
        kept.append(event)
        raise RuntimeError("always")

    runtime = harness.runtime(_handler(style, body))
    harness.put(1, 2, 3)
    with caplog.at_level(logging.CRITICAL, logger=_LOGGER):
        async with trio.open_nursery() as nursery:
            await _run_until_blocked(runtime, nursery)
            nursery.cancel_scope.cancel()
    assert len(kept) == 3
    assert harness.outstanding() == 0
    with pytest.raises(UseAfterRecycleError):
        _ = kept[0].kind


# -- cancellation ---------------------------------------------------------------


async def test_cancelling_mid_batch_recycles_the_current_event_and_those_not_reached(
    harness: Harness,
) -> None:
    seen: list[int] = []

    async def stalls_on_two(event: Event, ctx: ConsumerContext) -> None:
        seen.append(event.event_id)
        if event.event_id == 2:
            await trio.sleep_forever()

    runtime = harness.runtime(stalls_on_two)
    harness.put(1, 2, 3, 4, 5)  # one batch of five
    async with trio.open_nursery() as nursery:
        await _run_until_blocked(runtime, nursery)
        assert seen == [1, 2]
        assert harness.outstanding() >= 4  # at least 2 in the handler and 3..5 not reached
        nursery.cancel_scope.cancel()

    assert seen == [1, 2]
    assert harness.outstanding() == 0
    assert runtime.statistics().failed == 0  # cancellation is not a consumer failure
    assert len(harness.dlq) == 0


async def test_cancelling_while_waiting_for_events_takes_nothing_from_the_lane(
    harness: Harness,
) -> None:
    runtime = harness.runtime(lambda e, ctx: None)
    async with trio.open_nursery() as nursery:
        await _run_until_blocked(runtime, nursery)
        nursery.cancel_scope.cancel()
    harness.put(1, 2)
    assert harness.lane.statistics().depth == 2  # still the lane's, recycled when it closes
    harness.lane.close()
    assert harness.outstanding() == 0


class _Abort(BaseException):
    """Not an Exception: the runtime must let it through, recycling on the way."""


async def test_a_base_exception_from_a_sync_handler_propagates_after_recycling_the_batch(
    harness: Harness,
) -> None:
    def aborts_on_two(event: Event, ctx: ConsumerContext) -> None:
        if event.event_id == 2:
            raise _Abort

    runtime = harness.runtime(aborts_on_two)
    harness.put(1, 2, 3, 4)
    with pytest.raises(_Abort):
        await runtime.serve()
    assert harness.outstanding() == 0
    assert len(harness.dlq) == 0


# -- routing versions -----------------------------------------------------------


@STYLES
async def test_market_data_older_than_min_version_is_skipped_but_critical_kinds_arrive(
    harness: Harness, style: str
) -> None:
    seen: list[tuple[int, Kind]] = []
    runtime = harness.runtime(
        _handler(style, lambda e, ctx: seen.append((e.event_id, e.kind))), min_version=5
    )
    for event_id, kind, version in [
        (1, Kind.TRADE, 4),
        (2, Kind.EXEC_REPORT, 4),
        (3, Kind.TICKER, 3),
        (4, Kind.TRADE, 5),
        (5, Kind.BOOK_STATUS, 1),
        (6, Kind.BOOK_DELTA, 6),
        (7, Kind.CONTROL_RESULT, 0),
    ]:
        harness.lane.put(
            harness.event(event_id, kind=kind, routing_version=version, instrument=f"I-{event_id}")
        )
    async with trio.open_nursery() as nursery:
        await _run_until_blocked(runtime, nursery)
        nursery.cancel_scope.cancel()

    assert seen == [
        (2, Kind.EXEC_REPORT),
        (4, Kind.TRADE),
        (5, Kind.BOOK_STATUS),
        (6, Kind.BOOK_DELTA),
        (7, Kind.CONTROL_RESULT),
    ]
    stats = runtime.statistics()
    assert stats.skipped_old_version == 2
    assert stats.handled == 5
    assert stats.min_version == 5
    assert harness.outstanding() == 0  # skipped events went back too


# -- statistics -----------------------------------------------------------------


@STYLES
async def test_statistics_time_every_delivery_and_every_sixteenth_handler_under_light_load(
    harness: Harness, style: str, caplog: pytest.LogCaptureFixture
) -> None:
    def body(event: Event, ctx: ConsumerContext) -> None:
        harness.clock.now += 5_000_000  # the function "takes" 5 ms of wall time
        if event.event_id == 32:
            raise KeyError("x")

    runtime = harness.runtime(_handler(style, body))
    harness.put(16, 17, 32, 48)  # 16, 32 and 48 are in the handler sample
    with caplog.at_level(logging.CRITICAL, logger=_LOGGER):
        async with trio.open_nursery() as nursery:
            await _run_until_blocked(runtime, nursery)
            nursery.cancel_scope.cancel()

    stats = runtime.statistics()
    assert stats.consumer_id == "strategy-1"
    assert (stats.handled, stats.failed, stats.skipped_old_version) == (4, 1, 0)
    assert stats.delivery.count == 4
    assert stats.delivery.p50_ns > 0
    assert stats.handler.count == 2  # 17 is not sampled; a call that raised has no time
    assert 5_000_000 <= stats.handler.p50_ns <= stats.handler.max_ns < 5_100_000


async def test_under_load_only_events_picked_by_the_sample_mask_are_timed(
    harness: Harness,
) -> None:
    runtime = harness.runtime(lambda e, ctx: None)
    count = 4 * (LATENCY_SAMPLE_MASK + 1)
    assert count > LATENCY_EXACT_BATCH  # one batch long enough to count as load
    harness.put(*range(1, count + 1))
    async with trio.open_nursery() as nursery:
        await _run_until_blocked(runtime, nursery)
        nursery.cancel_scope.cancel()
    stats = runtime.statistics()
    assert stats.handled == count
    assert stats.delivery.count == stats.handler.count == 4


async def test_a_batch_at_the_exact_limit_times_every_event(harness: Harness) -> None:
    runtime = harness.runtime(lambda e, ctx: None)
    harness.put(*range(1, LATENCY_EXACT_BATCH + 1))
    async with trio.open_nursery() as nursery:
        await _run_until_blocked(runtime, nursery)
        nursery.cancel_scope.cancel()
    assert runtime.statistics().delivery.count == LATENCY_EXACT_BATCH


@STYLES
async def test_on_start_is_told_of_every_sixty_fourth_event(harness: Harness, style: str) -> None:
    started: list[tuple[int, int]] = []
    runtime = harness.runtime(
        _handler(style, lambda e, ctx: None),
        on_start=lambda event, wall_ns: started.append((event.event_id, wall_ns)),
    )
    harness.put(63, 64, 65, 128)
    async with trio.open_nursery() as nursery:
        await _run_until_blocked(runtime, nursery)
        nursery.cancel_scope.cancel()
    assert [event_id for event_id, _ in started] == [64, 128]
    assert all(wall_ns > 0 for _, wall_ns in started)


async def test_statistics_of_an_idle_consumer_are_empty(harness: Harness) -> None:
    stats = harness.runtime(lambda e, ctx: None).statistics()
    assert (stats.handled, stats.failed, stats.skipped_old_version) == (0, 0, 0)
    assert stats.delivery.count == stats.handler.count == 0


async def test_a_handler_awaiting_between_events_sees_later_puts_in_the_next_batch(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    seen: list[tuple[int, float]] = []

    async def slow(event: Event, ctx: ConsumerContext) -> None:
        await trio.sleep(1)
        seen.append((event.event_id, trio.current_time()))

    runtime = harness.runtime(slow)
    start = trio.current_time()
    harness.put(1, 2)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.serve)
        await trio.sleep(0.5)
        harness.put(3)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert [(event_id, at - start) for event_id, at in seen] == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert harness.lane.statistics().delivered == 3
