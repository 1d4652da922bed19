"""End to end through ``open_pipeline`` in debug mode: delivery, lifecycle, shutdown, races."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from meltica_trio import (
    BookDelta,
    BookSnapshot,
    CommandRefusedError,
    ConsumerContext,
    ConsumerExistsError,
    Event,
    Kind,
    LaneStatistics,
    Pipeline,
    PipelineClosedError,
    PipelineConfig,
    PoolExhausted,
    Side,
    Trade,
    UseAfterRecycleError,
)
from meltica_trio.testing import assert_balanced, open_test_pipeline

_RUNTIME_LOGGER = "meltica_trio.consumers._runtime"
_PIPELINE_LOGGER = "meltica_trio._pipeline"


def _config(**overrides: Any) -> PipelineConfig:
    return PipelineConfig(debug=True, **overrides)


def _lane(pipe: Pipeline, consumer_id: str) -> LaneStatistics:
    (lane,) = (lane for lane in pipe.statistics().lanes if lane.consumer_id == consumer_id)
    return lane


@attrs.define(eq=False)
class Recorder:
    """A sync consumer that keeps what it saw (never the envelope itself)."""

    seen: list[int] = attrs.field(factory=list)
    versions: list[int] = attrs.field(factory=list)
    seqs: list[int | None] = attrs.field(factory=list)
    skipped: int = 0

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        self.seen.append(event.event_id)
        self.versions.append(event.routing_version)
        self.seqs.append(event.seq)
        self.skipped += event.skipped


async def _publish(
    pipe: Pipeline,
    *,
    kind: Kind = Kind.TRADE,
    provider: str = "binance",
    instrument: str = "BTC-USDT",
    **fields: Any,
) -> int:
    event = pipe.new_event(kind=kind, provider=provider, instrument=instrument, **fields)
    event_id = event.event_id
    await pipe.publish(event)
    return event_id


def _publish_nowait(
    pipe: Pipeline,
    *,
    kind: Kind = Kind.TRADE,
    provider: str = "binance",
    instrument: str = "BTC-USDT",
    **fields: Any,
) -> int:
    event = pipe.new_event(kind=kind, provider=provider, instrument=instrument, **fields)
    event_id = event.event_id
    pipe.publish_nowait(event)
    return event_id


async def _stuck(event: Event, ctx: ConsumerContext) -> None:
    """Holds its first event (and so its whole lane) until cancelled."""
    await trio.sleep_forever()


def _delta(seq: int, prev: int) -> dict[str, Any]:
    payload = BookDelta(bids=(("100.5", "1"),), asks=(), prev_seq=prev)
    return {"kind": Kind.BOOK_DELTA, "seq": seq, "payload": payload}


# -- delivery -------------------------------------------------------------------

Coordinates = tuple[Kind, str, str]
FILTERS: Mapping[str, Mapping[str, Any]] = {
    "everything": {},
    "btc": {"instruments": "BTC-USDT"},
    "trades": {"kinds": Kind.TRADE},
    "okx-eth": {"providers": ["okx"], "instruments": ["ETH-USDT"]},
    "orders": {"kinds": ["exec_report", Kind.CONTROL_ACK]},
    "binance-btc-deltas": {
        "providers": "binance",
        "instruments": "BTC-USDT",
        "kinds": [Kind.BOOK_DELTA],
    },
}


def _matches(filters: Mapping[str, Any], coordinates: Coordinates) -> bool:
    kind, provider, instrument = coordinates

    def allowed(key: str, value: str) -> bool:
        wanted = filters.get(key)
        if wanted is None:
            return True
        wanted = [wanted] if isinstance(wanted, str) else wanted
        return value in {str(w) for w in wanted}

    return (
        allowed("kinds", kind)
        and allowed("providers", provider)
        and allowed("instruments", instrument)
    )


async def test_every_subscriber_receives_every_matching_event_exactly_once_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(7)
    kinds = [Kind.TRADE, Kind.BOOK_DELTA, Kind.EXEC_REPORT, Kind.CONTROL_ACK, Kind.BOOK_STATUS]
    published: list[tuple[int, Coordinates, Trade]] = []
    recorders = {name: Recorder() for name in FILTERS}
    payloads: dict[str, list[object]] = {name: [] for name in FILTERS}

    async with open_test_pipeline(_config(lane_capacity=10_000)) as pipe:
        for name, filters in FILTERS.items():
            recorder = recorders[name]

            def handler(event: Event, ctx: ConsumerContext, recorder: Recorder = recorder) -> None:
                recorder(event, ctx)
                payloads[ctx.consumer_id].append(event.payload)

            await pipe.subscribe(name, handler, **filters)
        for n in range(600):
            coordinates = (
                rng.choice(kinds),
                rng.choice(["binance", "okx"]),
                rng.choice(["BTC-USDT", "ETH-USDT"]),
            )
            payload = Trade(price="1", size="1", side=Side.BUY, trade_id=str(n), trade_ts=n)
            kind, provider, instrument = coordinates
            event_id = await _publish(
                pipe, kind=kind, provider=provider, instrument=instrument, payload=payload
            )
            published.append((event_id, coordinates, payload))
        await pipe.wait_idle()
        stats = pipe.statistics()

    for name, filters in FILTERS.items():
        expected = [(i, p) for i, c, p in published if _matches(filters, c)]
        assert recorders[name].seen == [i for i, _ in expected], name
        # Every subscriber read the one payload object: duplicates share it.
        assert all(
            got is want for got, want in zip(payloads[name], (p for _, p in expected), strict=True)
        )
    deliveries = sum(len(r.seen) for r in recorders.values())
    assert stats.fanout.events == len(published)
    assert stats.fanout.deliveries == deliveries
    assert stats.fanout.unrouted == 0  # "everything" matches every event
    assert stats.fanout.max_subscribers == max(
        sum(_matches(f, c) for f in FILTERS.values()) for _, c, _ in published
    )
    assert all(lane.skipped == lane.coalesced == 0 for lane in stats.lanes)
    assert [c.handled for c in stats.consumers] == [len(r.seen) for r in recorders.values()]
    assert_balanced(pipe)


async def test_an_event_no_subscriber_matches_is_recycled_at_once() -> None:
    btc = Recorder()
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("btc-holder", _stuck, instruments="BTC-USDT")
        await pipe.subscribe("btc", btc, instruments="BTC-USDT")
        held = await _publish(pipe)
        await _publish(pipe, instrument="ETH-USDT")
        await _publish(pipe, provider="okx", instrument="SOL-USDT", kind=Kind.EXEC_REPORT)
        await trio.testing.wait_all_tasks_blocked()

        stats = pipe.statistics()
        assert stats.fanout.unrouted == 2
        assert stats.fanout.events == 3
        # Only the BTC event is still out, in the stuck consumer's hands.
        assert stats.pool.in_use == 1
        assert btc.seen == [held]
    assert_balanced(pipe)


async def test_wait_idle_returns_once_every_event_is_handled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[int] = []

    async def slowish(event: Event, ctx: ConsumerContext) -> None:
        await trio.sleep(0.5)
        handled.append(event.event_id)

    async with open_test_pipeline() as pipe:
        await pipe.subscribe("slowish", slowish)
        ids = [await _publish(pipe) for _ in range(4)]
        await pipe.wait_idle()
        assert handled == ids
        assert pipe.statistics().pool.in_use == 0


async def test_a_critical_event_is_never_dropped_by_a_full_lane() -> None:
    async with open_test_pipeline(_config(lane_capacity=2)) as pipe:
        await pipe.subscribe("stuck", _stuck)
        for _ in range(10):
            await _publish(pipe, kind=Kind.EXEC_REPORT, instrument="X")
        await trio.testing.wait_all_tasks_blocked()
        lane = _lane(pipe, "stuck")
        assert lane.skipped == lane.overflowed == 0
        assert lane.depth + lane.delivered == 10
        assert lane.critical_backlog == lane.depth
    assert_balanced(pipe)


async def test_latest_kinds_are_coalesced_for_a_lagging_subscriber_without_a_crash() -> None:
    fast = Recorder()
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("stuck", _stuck)
        await pipe.subscribe("fast", fast)
        for seq in range(1, 6):
            await _publish(pipe, kind=Kind.TICKER, seq=seq)
            await trio.testing.wait_all_tasks_blocked()  # the fast one keeps up
        assert fast.seqs == [1, 2, 3, 4, 5]
        stuck = _lane(pipe, "stuck")
        # The stuck consumer holds ticker 1; 2..5 were coalesced into one queued ticker.
        assert stuck.depth == 1
        assert stuck.coalesced >= 1
        assert stuck.delivered + stuck.depth + stuck.coalesced == 5
        assert pipe.statistics().pool.in_use == 2
    assert_balanced(pipe)


# -- intake ---------------------------------------------------------------------


async def test_publish_nowait_raises_would_block_when_the_intake_is_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_test_pipeline(_config(intake_capacity=3)) as pipe:
        await pipe.subscribe("everything", Recorder())
        await trio.testing.wait_all_tasks_blocked()
        # The dispatcher waits in receive(), so the first event goes straight to it and
        # three more fill the buffer; none of them has run yet.
        for _ in range(4):
            _publish_nowait(pipe)
        assert pipe.statistics().intake_depth == 3
        spare = pipe.new_event(kind=Kind.TRADE, provider="binance", instrument="BTC-USDT")
        with pytest.raises(trio.WouldBlock):
            pipe.publish_nowait(spare)
        await pipe.publish(spare)  # the caller kept it and may wait instead
        await pipe.wait_idle()
        assert pipe.statistics().consumers[0].handled == 5
    assert_balanced(pipe)


async def test_a_cancelled_publish_recycles_the_event() -> None:
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("everything", Recorder())
        event = pipe.new_event(kind=Kind.TRADE)
        with trio.CancelScope() as scope:
            scope.cancel()
            await pipe.publish(event)
        assert scope.cancelled_caught
        assert pipe.statistics().pool.in_use == 0  # the pipeline took it, and gave it back
        with pytest.raises(UseAfterRecycleError):
            _ = event.kind
        assert pipe.statistics().fanout.events == 0
    assert_balanced(pipe)


async def test_new_event_raises_pool_exhausted_when_every_envelope_is_lent() -> None:
    async with open_test_pipeline(_config(pool_capacity=2)) as pipe:
        held = [pipe.new_event(kind=Kind.TRADE) for _ in range(2)]
        with pytest.raises(PoolExhausted) as caught:
            pipe.new_event(kind=Kind.TRADE)
        assert caught.value.pool == "pipeline"
        assert caught.value.capacity == 2
        pipe.recycler.recycle_all(held)  # never published: the caller still owns them
    assert_balanced(pipe)


async def test_new_event_stamps_a_fresh_id_and_the_wall_clock() -> None:
    async with open_test_pipeline() as pipe:
        first = pipe.new_event(kind=Kind.TRADE, trace_id="t-1", decision_id="d-1", seq=9)
        second = pipe.new_event(kind=Kind.TICKER, ingest_ts=42)
        assert second.event_id == first.event_id + 1
        assert first.ingest_ts > 0
        assert second.ingest_ts == 42
        assert (first.trace_id, first.decision_id, first.seq) == ("t-1", "d-1", 9)
        pipe.recycler.recycle_all([first, second])
    assert_balanced(pipe)


# -- shutdown -------------------------------------------------------------------


async def test_leaving_the_block_recycles_events_in_lanes_in_ordering_and_in_the_intake() -> None:
    async with open_test_pipeline(_config(max_lateness=3600.0)) as pipe:
        await pipe.subscribe("stuck", _stuck)
        for _ in range(5):
            await _publish(pipe)  # 1 in the handler, the rest queued in its lane
        # A stream's first sequenced events wait in the reorder window for a hole.
        await _publish(pipe, instrument="ETH-USDT", seq=10)
        await _publish(pipe, instrument="ETH-USDT", seq=12)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(4):
            _publish_nowait(pipe, instrument="SOL-USDT")  # the dispatcher gets no turn

        stats = pipe.statistics()
        assert stats.ordering.held == 2
        assert stats.intake_depth >= 3
        assert stats.lanes[0].depth + stats.consumers[0].handled == 5
        assert stats.pool.in_use == 11
    assert_balanced(pipe)


async def test_publish_and_subscribe_after_the_block_raise_pipeline_closed_error() -> None:
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("everything", Recorder())
        late = pipe.new_event(kind=Kind.TRADE)
        later = pipe.new_event(kind=Kind.TRADE)

    with pytest.raises(PipelineClosedError):
        await pipe.publish(late)
    with pytest.raises(PipelineClosedError):
        pipe.publish_nowait(later)
    with pytest.raises(PipelineClosedError):
        await pipe.subscribe("newcomer", Recorder())
    # A failed publish still took the event: nothing for the caller to clean up.
    assert_balanced(pipe)


async def test_an_exception_in_the_block_ends_the_pipeline_and_returns_every_lease() -> None:
    # A strict nursery owns the block: the error arrives wrapped in an ExceptionGroup.
    with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="strategy bug")):
        async with open_test_pipeline() as pipe:
            await pipe.subscribe("stuck", _stuck)
            for _ in range(3):
                await _publish(pipe)
            await trio.testing.wait_all_tasks_blocked()
            raise ValueError("strategy bug")
    assert_balanced(pipe)


async def test_a_hundred_thousand_events_with_failing_consumers_balance_the_pool(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    events, consumers = 100_000, 3
    ok = [0] * consumers

    def failing_on(offset: int) -> Callable[[Event, ConsumerContext], None]:
        def handler(event: Event, ctx: ConsumerContext) -> None:
            if event.event_id % 10 == offset:
                raise ValueError(f"{ctx.consumer_id} refuses {event.event_id}")
            ok[offset] += 1

        return handler

    config = _config(lane_capacity=events, pool_capacity=consumers * events + 10_000)
    caplog.set_level(logging.CRITICAL, logger=_RUNTIME_LOGGER)
    async with open_test_pipeline(config) as pipe:
        for offset in range(consumers):
            await pipe.subscribe(f"c{offset}", failing_on(offset))
        for _ in range(events):
            event = pipe.new_event(kind=Kind.TRADE, provider="binance", instrument="BTC-USDT")
            try:
                pipe.publish_nowait(event)
            except trio.WouldBlock:
                await pipe.publish(event)
        await pipe.wait_idle()
        stats = pipe.statistics()
        letters = pipe.dlq.entries()

    assert ok == [events - events // 10] * consumers
    assert [(c.handled, c.failed) for c in stats.consumers] == [(events, events // 10)] * consumers
    failures = consumers * events // 10
    assert stats.dlq.recorded == failures
    assert stats.dlq.held == min(failures, config.dlq_capacity)
    assert stats.dlq.dropped == failures - stats.dlq.held
    assert {letter.consumer_id for letter in letters} <= {"c0", "c1", "c2"}
    assert all(letter.event_id % 10 == int(letter.consumer_id[1]) for letter in letters)
    assert stats.fanout.deliveries == consumers * events
    assert_balanced(pipe)


# -- isolation ------------------------------------------------------------------


async def test_slow_subscriber_does_not_delay_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events = 500
    fast = [Recorder(), Recorder()]
    fast_done = [trio.Event(), trio.Event()]
    slow = Recorder()

    async def slow_handler(event: Event, ctx: ConsumerContext) -> None:
        await trio.sleep(1)
        slow(event, ctx)

    final = events  # a fresh pipeline numbers its events from 1
    async with open_test_pipeline(_config(lane_capacity=4096)) as pipe:
        for n, (recorder, done) in enumerate(zip(fast, fast_done, strict=True)):

            def handler(
                event: Event, ctx: ConsumerContext, r: Recorder = recorder, d: trio.Event = done
            ) -> None:
                r(event, ctx)
                if event.event_id == final:
                    d.set()

            await pipe.subscribe(f"fast-{n}", handler)
        await pipe.subscribe("slow", slow_handler, lane_capacity=16)

        start = trio.current_time()
        ids = [await _publish(pipe) for _ in range(events)]
        assert ids[-1] == final
        for done in fast_done:
            await done.wait()

        # The fast consumers have everything before the slow one finished even one event.
        assert trio.current_time() == start
        assert all(recorder.seen == ids for recorder in fast)
        assert slow.seen == []
        lane = _lane(pipe, "slow")
        assert lane.depth <= 16
        assert lane.skipped > 0
        assert lane.delivered + lane.depth + lane.skipped == events
        assert lane.oldest_age_ns > 0
        assert pipe.statistics().fanout.deliveries == 3 * events

        await trio.sleep(events)  # let the slow one catch up with what it kept
        lane = _lane(pipe, "slow")
        assert len(slow.seen) == lane.delivered < events
        assert slow.seen == sorted(slow.seen)
        # Each drop is announced on the next delivered event of the stream.
        assert slow.skipped == lane.skipped
    assert_balanced(pipe)


async def test_a_consumer_exception_goes_to_the_dlq_and_the_pipeline_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[int] = []

    def picky(event: Event, ctx: ConsumerContext) -> None:
        seen.append(event.event_id)
        if event.seq == 2:
            raise LookupError("no such level")

    with caplog.at_level(logging.ERROR, logger=_RUNTIME_LOGGER):
        async with open_test_pipeline() as pipe:
            await pipe.subscribe("picky", picky)
            ids = [
                await _publish(pipe, kind=Kind.EXEC_REPORT, seq=seq, trace_id=f"tr-{seq}")
                for seq in (1, 2, 3)
            ]
            await trio.testing.wait_all_tasks_blocked()
            (letter,) = pipe.dlq.entries()

    assert seen == ids
    assert (letter.consumer_id, letter.trace_id, letter.event_id) == ("picky", "tr-2", ids[1])
    assert "LookupError: no such level" in letter.traceback
    assert any("trace_id=tr-2" in record.getMessage() for record in caplog.records)
    assert_balanced(pipe)


# -- cancellation ---------------------------------------------------------------


async def test_cancelling_while_a_fan_out_waits_for_the_pool_leaves_it_balanced() -> None:
    # Three stuck subscribers hold every envelope they get; the fourth event's
    # fan-out gets one duplicate from the last free slot and waits for the second.
    config = _config(pool_capacity=11, pool_max_wait=3600.0)
    with trio.CancelScope() as outer:
        async with open_test_pipeline(config) as pipe:
            for name in ("a", "b", "c"):
                await pipe.subscribe(name, _stuck)
            for _ in range(4):
                await _publish(pipe)
            await trio.testing.wait_all_tasks_blocked()
            stats = pipe.statistics()
            assert stats.pool.in_use == 11
            assert stats.pool.waits == 1
            assert stats.fanout.deliveries == 9  # the fourth event is mid fan-out
            outer.cancel()
            await trio.sleep_forever()
    assert outer.cancelled_caught
    assert_balanced(pipe)


@pytest.mark.parametrize("stop_at", [1, 5, 40, 333])
async def test_a_consumer_cancelling_the_pipeline_mid_fan_out_leaves_the_pool_balanced(
    stop_at: int, autojump_clock: trio.testing.MockClock
) -> None:
    seen = 0

    async def dawdler(event: Event, ctx: ConsumerContext) -> None:
        await trio.sleep(0.001)  # holds its batch a while, so fan-outs wait for the pool

    # A pool this small keeps the dispatcher waiting for duplicates most of the time,
    # so the canceller usually runs while a fan-out is part-way.
    config = _config(intake_capacity=4, pool_capacity=16, pool_max_wait=3600.0)
    with trio.CancelScope() as outer:
        async with open_test_pipeline(config) as pipe:

            def canceller(event: Event, ctx: ConsumerContext) -> None:
                nonlocal seen
                seen += 1
                if seen == stop_at:
                    outer.cancel()

            await pipe.subscribe("canceller", canceller)
            await pipe.subscribe("dawdler-1", dawdler)
            await pipe.subscribe("dawdler-2", dawdler)
            for _ in range(1000):
                await _publish_when_pool_allows(pipe)
    assert outer.cancelled_caught
    assert seen >= stop_at  # a sync consumer finishes its batch: it has no checkpoint
    if stop_at > 5:
        assert pipe.statistics().pool.waits > 0
    assert_balanced(pipe)


def _checkpointing(rng: random.Random) -> Callable[[Event, ConsumerContext], Any]:
    async def handler(event: Event, ctx: ConsumerContext) -> None:
        for _ in range(rng.randrange(3)):
            await trio.lowlevel.checkpoint()

    return handler


async def _new_event_when_pool_allows(pipe: Pipeline, **fields: Any) -> Event:
    fields.setdefault("kind", Kind.TRADE)
    while True:
        try:
            return pipe.new_event(**fields)
        except PoolExhausted:
            await trio.sleep(0.001)  # the mock clock: consumers give envelopes back


async def _publish_when_pool_allows(pipe: Pipeline, **fields: Any) -> int:
    event = await _new_event_when_pool_allows(pipe, **fields)
    event_id = event.event_id
    await pipe.publish(event)
    return event_id


async def test_a_dispatcher_crash_ends_the_block_with_the_error_and_returns_every_lease(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Two stuck subscribers, three envelopes: the second event's duplicate never comes.
    config = _config(pool_capacity=3, pool_max_wait=1.0)
    with pytest.RaisesGroup(PoolExhausted):
        async with open_test_pipeline(config) as pipe:
            await pipe.subscribe("a", _stuck)
            await pipe.subscribe("b", _stuck)
            await _publish(pipe)
            await _publish(pipe)
            await trio.sleep_forever()
    assert trio.current_time() >= 1.0
    assert_balanced(pipe)


# -- subscriptions --------------------------------------------------------------


async def test_unsubscribe_stops_delivery_recycles_its_queue_and_bumps_routing_version() -> None:
    gone: list[int] = []
    stays = Recorder()

    async def leaving(event: Event, ctx: ConsumerContext) -> None:
        gone.append(event.event_id)
        await trio.sleep_forever()

    async with open_test_pipeline() as pipe:
        first = await pipe.subscribe("leaving", leaving)
        second = await pipe.subscribe("stays", stays)
        assert second == first + 1
        before = [await _publish(pipe) for _ in range(5)]
        await trio.testing.wait_all_tasks_blocked()
        assert pipe.statistics().pool.in_use == 5  # all the leaving consumer's

        version = await pipe.unsubscribe("leaving")
        stats = pipe.statistics()
        assert version == second + 1 == stats.routing_version
        assert stats.pool.in_use == 0
        assert [c.consumer_id for c in stats.consumers] == ["stays"]
        assert stats.subscribers == 1

        after = [await _publish(pipe) for _ in range(3)]
        await trio.testing.wait_all_tasks_blocked()
        assert gone == before[:1]
        assert stays.seen == before + after
        assert pipe.statistics().fanout.max_subscribers == 2

        with pytest.raises(KeyError):
            await pipe.unsubscribe("leaving")
        # The id is free again, for any function.
        assert await pipe.subscribe("leaving", Recorder()) == version + 1
    assert_balanced(pipe)


async def test_a_subscribe_cancelled_while_starting_leaves_no_consumer_behind() -> None:
    recorder = Recorder()
    async with open_test_pipeline() as pipe:
        with trio.CancelScope() as scope:
            scope.cancel()
            await pipe.subscribe("r", recorder)
        assert scope.cancelled_caught
        assert pipe.statistics().subscribers == 0
        assert len(pipe.routing) == 0

        await pipe.subscribe("r", recorder)  # a retry gets a live consumer
        event_id = await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        assert recorder.seen == [event_id]
    assert_balanced(pipe)


async def test_unsubscribing_a_consumer_whose_subscribe_is_still_starting_stops_it() -> None:
    recorder = Recorder()
    refused: list[CommandRefusedError] = []

    async def subscribe() -> None:
        try:
            await pipe.subscribe("r", recorder)
        except CommandRefusedError as exc:
            refused.append(exc)

    async with open_test_pipeline() as pipe:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(subscribe)
            while not pipe.statistics().subscribers:
                await trio.lowlevel.checkpoint()
            assert pipe.routing.subscription("r") is None  # not routed yet
            version = await pipe.unsubscribe("r")
        # Whichever command reached the bus first, nothing is left half made: either
        # the subscribe was refused (the consumer was gone) or it was undone.
        assert [exc.reason for exc in refused] in ([], ["unknown consumer 'r'"])
        assert version == pipe.statistics().routing_version
        assert pipe.statistics().subscribers == 0
        assert len(pipe.routing) == 0  # the finished subscribe did not route it after all
        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        assert recorder.seen == []
        assert pipe.statistics().fanout.unrouted == 1
    assert_balanced(pipe)


async def test_subscribing_twice_with_the_same_function_replaces_the_filters() -> None:
    recorder = Recorder()
    async with open_test_pipeline() as pipe:
        first = await pipe.subscribe("r", recorder, kinds=Kind.TRADE)
        second = await pipe.subscribe("r", recorder, kinds=[Kind.EXEC_REPORT])
        assert second == first + 1
        assert pipe.statistics().subscribers == 1
        await _publish(pipe, kind=Kind.TRADE)
        order = await _publish(pipe, kind=Kind.EXEC_REPORT)
        await trio.testing.wait_all_tasks_blocked()
        assert recorder.seen == [order]  # once, under the new filters
        sub = pipe.routing.subscription("r")
        assert sub is not None
        assert sub.kinds == frozenset({Kind.EXEC_REPORT})
    assert_balanced(pipe)


async def test_subscribing_a_bound_method_twice_is_idempotent() -> None:
    @attrs.define(eq=False)
    class Strategy:
        seen: list[int] = attrs.field(factory=list)

        def on_event(self, event: Event, ctx: ConsumerContext) -> None:
            self.seen.append(event.event_id)

    strategy = Strategy()
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("strategy", strategy.on_event)
        await pipe.subscribe("strategy", strategy.on_event)  # a new bound-method object
        with pytest.raises(ConsumerExistsError):
            await pipe.subscribe("strategy", Strategy().on_event)
        event_id = await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        assert strategy.seen == [event_id]
    assert_balanced(pipe)


async def test_subscribing_an_id_with_another_function_raises_consumer_exists_error() -> None:
    original, other = Recorder(), Recorder()
    async with open_test_pipeline() as pipe:
        version = await pipe.subscribe("r", original)
        with pytest.raises(ConsumerExistsError) as caught:
            await pipe.subscribe("r", other, kinds=Kind.TRADE)
        assert caught.value.consumer_id == "r"
        assert pipe.statistics().routing_version == version  # nothing changed
        event_id = await _publish(pipe, kind=Kind.TICKER)
        await trio.testing.wait_all_tasks_blocked()
        assert original.seen == [event_id]
        assert other.seen == []
    assert_balanced(pipe)


async def test_subscribing_with_an_unknown_kind_raises_value_error() -> None:
    async with open_test_pipeline() as pipe:
        with pytest.raises(ValueError, match="candle"):
            await pipe.subscribe("r", Recorder(), kinds=["candle"])
        assert pipe.statistics().subscribers == 0


async def test_a_lane_capacity_below_one_is_refused() -> None:
    async with open_test_pipeline() as pipe:
        with pytest.raises(ValueError, match="at least 1"):
            await pipe.subscribe("r", Recorder(), lane_capacity=0)
        assert pipe.statistics().subscribers == 0


async def test_events_routed_after_a_pool_wait_carry_the_current_routing_version() -> None:
    gate = trio.Event()

    async def gated(event: Event, ctx: ConsumerContext) -> None:
        await gate.wait()

    newcomer = Recorder()
    async with open_test_pipeline(_config(pool_capacity=4, pool_max_wait=3600.0)) as pipe:
        await pipe.subscribe("a", gated)
        await pipe.subscribe("b", gated)
        await trio.testing.wait_all_tasks_blocked()
        # Three events in one dispatcher batch: the first takes the last free envelope
        # for its duplicate, the second waits for the pool, the third is behind it.
        ids = [_publish_nowait(pipe) for _ in range(3)]
        await trio.testing.wait_all_tasks_blocked()
        assert pipe.statistics().pool.waits == 1

        version = await pipe.subscribe("newcomer", newcomer)
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        # Routed to the newcomer, so routed under the new version: it must say so.
        assert newcomer.seen == ids[2:]
        assert newcomer.versions == [version]
    assert_balanced(pipe)


# -- ordering and resync ----------------------------------------------------------


async def test_a_sequence_gap_on_a_contiguous_book_calls_the_resync_listener() -> None:
    resyncs: list[tuple[str, str]] = []
    book = Recorder()
    async with open_test_pipeline() as pipe:
        pipe.on_resync("binance", lambda instrument, reason: resyncs.append((instrument, reason)))
        await pipe.subscribe("book", book, kinds=[Kind.BOOK_DELTA, Kind.BOOK_SNAPSHOT])
        for seq, prev in [(101, 100), (102, 101), (105, 104), (106, 105)]:
            await _publish(pipe, **_delta(seq, prev))
        await trio.testing.wait_all_tasks_blocked()
        assert resyncs == [("BTC-USDT", "expected prev_seq 102, got 104")]

        snapshot = BookSnapshot(bids=(("100", "2"),), asks=(("101", "1"),))
        await _publish(pipe, kind=Kind.BOOK_SNAPSHOT, seq=110, payload=snapshot)
        await _publish(pipe, **_delta(111, 110))
        await trio.testing.wait_all_tasks_blocked()

        assert book.seqs == [101, 102, 110, 111]
        ordering = pipe.statistics().ordering
        assert (ordering.gaps, ordering.gap_dropped) == (1, 2)
        assert len(resyncs) == 1
    assert_balanced(pipe)


async def test_a_gap_without_a_resync_listener_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    resyncs: list[tuple[str, str]] = []
    async with open_test_pipeline() as pipe:
        pipe.on_resync("binance", lambda instrument, reason: resyncs.append((instrument, reason)))
        await _publish(pipe, provider="okx", **_delta(5, 4))
        await _publish(pipe, provider="okx", **_delta(9, 8))
        await trio.testing.wait_all_tasks_blocked()
    assert resyncs == []  # another provider's listener is not told
    (record,) = [r for r in caplog.records if r.name == _PIPELINE_LOGGER]
    assert record.levelno == logging.WARNING
    assert "no resync listener for okx" in record.getMessage()
    assert "BTC-USDT" in record.getMessage()
    assert_balanced(pipe)


async def test_a_lane_that_drops_a_book_delta_asks_for_a_resync() -> None:
    resyncs: list[tuple[str, str]] = []
    async with open_test_pipeline() as pipe:
        pipe.on_resync("binance", lambda instrument, reason: resyncs.append((instrument, reason)))
        await pipe.subscribe("stuck", _stuck, lane_capacity=2)
        for seq in range(1, 6):
            await _publish(pipe, **_delta(seq, seq - 1))
        await trio.testing.wait_all_tasks_blocked()
        assert resyncs
        assert resyncs[0] == ("BTC-USDT", "a subscriber's lane dropped a book delta")
        assert _lane(pipe, "stuck").books_awaiting_snapshot == 1
    assert_balanced(pipe)


# -- races ----------------------------------------------------------------------

RACE_KINDS = [Kind.TRADE, Kind.BOOK_DELTA, Kind.EXEC_REPORT, Kind.CONTROL_ACK, Kind.BOOK_STATUS]


@pytest.mark.parametrize("seed", range(10))
async def test_random_interleavings_keep_exactly_once_delivery_and_a_balanced_pool(
    seed: int, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(seed)
    intake = rng.choice([1, 4, 64])
    config = _config(
        intake_capacity=intake,
        # Small pools make fan-outs wait for duplicates; the intake, a dispatched batch
        # and a refilled intake may all hold envelopes at once.
        pool_capacity=rng.choice([2 * intake + 8, 2 * intake + 32, 4096]),
        pool_max_wait=5.0,
        lane_capacity=10_000,
    )
    seen: dict[str, list[int]] = {name: [] for name in FILTERS}
    raised = 0

    def consumer(name: str) -> Callable[[Event, ConsumerContext], Any]:
        own = random.Random(f"{seed}/{name}")

        async def async_handler(event: Event, ctx: ConsumerContext) -> None:
            nonlocal raised
            for _ in range(own.randrange(3)):
                await trio.lowlevel.checkpoint()
            seen[name].append(event.event_id)
            for _ in range(own.randrange(2)):
                await trio.lowlevel.checkpoint()
            if own.random() < 0.05:
                raised += 1
                raise RuntimeError("random failure")

        def sync_handler(event: Event, ctx: ConsumerContext) -> None:
            seen[name].append(event.event_id)

        return async_handler if own.random() < 0.75 else sync_handler

    published: list[tuple[int, Coordinates]] = []
    caplog.set_level(logging.CRITICAL, logger=_RUNTIME_LOGGER)
    async with open_test_pipeline(config) as pipe:
        for name, filters in FILTERS.items():
            await pipe.subscribe(name, consumer(name), **filters)
        for _ in range(400):
            coordinates = (
                rng.choice(RACE_KINDS),
                rng.choice(["binance", "okx"]),
                rng.choice(["BTC-USDT", "ETH-USDT"]),
            )
            kind, provider, instrument = coordinates
            event = await _new_event_when_pool_allows(
                pipe, kind=kind, provider=provider, instrument=instrument
            )
            published.append((event.event_id, coordinates))
            if rng.random() < 0.5:
                try:
                    pipe.publish_nowait(event)
                except trio.WouldBlock:
                    await pipe.publish(event)  # the caller kept it
            else:
                await pipe.publish(event)
            for _ in range(rng.randrange(3)):
                await trio.lowlevel.checkpoint()
        await pipe.wait_idle()
        stats = pipe.statistics()

    for name, filters in FILTERS.items():
        assert seen[name] == [i for i, c in published if _matches(filters, c)], name
    assert stats.dlq.recorded == raised
    assert sum(c.failed for c in stats.consumers) == raised
    assert_balanced(pipe)
