"""EventPool: bounded lending, waiting on the trio clock, exhaustion policies, duplicates."""

from __future__ import annotations

import enum
import math
import typing
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from meltica_trio import (
    Event,
    EventPool,
    Exhaustion,
    PoolExhausted,
    Recycler,
    Side,
    Trade,
    UseAfterRecycleError,
)

_CAPACITY = 8  # the conftest pool's capacity


def _trade(trade_id: str = "t-1") -> Trade:
    return Trade(price="39000.5", size="0.25", side=Side.BUY, trade_id=trade_id, trade_ts=1)


def _distinct_value(name: str, default: object) -> object:
    """A value for the Event field ``name`` that differs from its ``default``."""
    if isinstance(default, enum.Enum):
        return next(member for member in type(default) if member is not default)
    if isinstance(default, int):
        return default + 7
    if isinstance(default, str):
        return default + "x"
    declared = typing.get_args(typing.get_type_hints(Event)[name])
    if int in declared:
        return 7
    if str in declared:
        return "x"
    return _trade(name)


def _stamp_every_field(event: Event) -> None:
    for field in attrs.fields(Event):
        setattr(event, field.name, _distinct_value(field.name, field.default))


def _blank() -> tuple[object, ...]:
    return Event().as_tuple()


@pytest.fixture
def production() -> Iterator[Recycler]:
    """A production-mode recycler; the test fails if a lease is still out at its end."""
    recycler = Recycler(debug=False)
    yield recycler
    report = recycler.leak_report()
    assert not report, str(report)


# -- construction ---------------------------------------------------------------


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_below_one_is_rejected(recycler: Recycler, capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        EventPool(Event, recycler=recycler, capacity=capacity)


@pytest.mark.parametrize("max_wait", [-0.001, -1.0, math.nan])
def test_negative_or_nan_max_wait_is_rejected(recycler: Recycler, max_wait: float) -> None:
    with pytest.raises(ValueError, match="max_wait must be >= 0"):
        EventPool(Event, recycler=recycler, max_wait=max_wait)


def test_capacity_one_and_zero_max_wait_are_accepted(recycler: Recycler) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=1, max_wait=0)
    assert (pool.capacity, pool.max_wait) == (1, 0)


def test_pool_is_named_after_its_class_unless_named(recycler: Recycler) -> None:
    assert EventPool(Event, recycler=recycler).statistics().name == "Event"
    assert EventPool(Event, recycler=recycler, name="fills").statistics().name == "fills"


def test_blank_field_values_differ_from_stamped_ones() -> None:
    # Guards the helpers below: a stamp equal to the defaults would make reset tests vacuous.
    event = Event()
    _stamp_every_field(event)
    differing = [a != b for a, b in zip(event.as_tuple(), _blank(), strict=True)]
    assert all(differing)


# -- acquire_nowait ------------------------------------------------------------------


def test_acquire_nowait_lends_distinct_blank_objects_up_to_capacity(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    lent = [pool.acquire_nowait() for _ in range(_CAPACITY)]
    assert len({id(obj) for obj in lent}) == _CAPACITY
    assert all(type(obj) is Event and obj.as_tuple() == _blank() for obj in lent)
    recycler.recycle_all(lent)


def test_acquire_nowait_raises_would_block_when_every_object_is_lent(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    lent = [pool.acquire_nowait() for _ in range(_CAPACITY)]
    with pytest.raises(trio.WouldBlock):
        pool.acquire_nowait()
    stats = pool.statistics()
    assert (stats.in_use, stats.acquired) == (_CAPACITY, _CAPACITY)
    recycler.recycle(lent.pop())
    lent.append(pool.acquire_nowait())
    recycler.recycle_all(lent)


def test_acquire_nowait_does_not_fall_back_to_the_heap(production: Recycler) -> None:
    pool = EventPool(Event, recycler=production, capacity=1, on_exhausted=Exhaustion.HEAP)
    held = pool.acquire_nowait()
    with pytest.raises(trio.WouldBlock):
        pool.acquire_nowait()
    assert pool.statistics().heap_fallbacks == 0
    production.recycle(held)


def test_available_counts_objects_lendable_without_waiting(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    first, second = pool.acquire_nowait(), pool.acquire_nowait()
    assert pool.available() == _CAPACITY - 2
    recycler.recycle(first)
    assert pool.available() == _CAPACITY - 1
    recycler.recycle(second)


def test_production_pool_reuses_a_recycled_object(production: Recycler) -> None:
    pool = EventPool(Event, recycler=production, capacity=2)
    first = pool.acquire_nowait()
    production.recycle(first)
    again = pool.acquire_nowait()
    assert again is first
    assert pool.statistics().high_water == 1
    production.recycle(again)


def test_recycle_returns_every_field_to_its_default(production: Recycler) -> None:
    pool = EventPool(Event, recycler=production, capacity=1)
    event = pool.acquire_nowait()
    _stamp_every_field(event)
    production.recycle(event)
    assert event.as_tuple() == _blank()
    again = pool.acquire_nowait()
    assert again is event
    assert again.as_tuple() == _blank()
    production.recycle(again)


# -- duplicates ------------------------------------------------------------------


def test_duplicate_nowait_is_a_shallow_copy_sharing_the_payload(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    source = pool.acquire_nowait()
    _stamp_every_field(source)
    dup = pool.duplicate_nowait(source)
    assert dup is not source
    assert dup.payload is source.payload
    assert dup.as_tuple() == source.as_tuple()
    dup.instrument = "ETH-USDT"
    assert source.instrument != "ETH-USDT"
    assert pool.statistics().in_use == 2
    recycler.recycle_all([source, dup])


def test_duplicate_nowait_raises_would_block_on_a_full_pool(recycler: Recycler) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=1)
    source = pool.acquire_nowait()
    source.payload = _trade()
    with pytest.raises(trio.WouldBlock):
        pool.duplicate_nowait(source)
    assert source.payload == _trade()
    assert pool.statistics().acquired == 1
    recycler.recycle(source)


def test_duplicate_nowait_of_a_recycled_source_raises_and_lends_nothing(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    source = pool.acquire_nowait()
    recycler.recycle(source)
    with pytest.raises(UseAfterRecycleError):
        pool.duplicate_nowait(source)
    stats = pool.statistics()
    assert stats.in_use == 0
    assert stats.acquired == stats.recycled
    assert not recycler.leak_report()


async def test_duplicate_waits_for_a_return_and_shares_the_payload(
    recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=2, max_wait=5.0)
    source = await pool.acquire()
    source.payload = _trade()
    source.instrument = "BTC-USDT"
    blocker = pool.acquire_nowait()
    copies: list[Event] = []

    async def duplicate() -> None:
        copies.append(await pool.duplicate(source))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(duplicate)
        await trio.testing.wait_all_tasks_blocked()
        assert copies == []
        recycler.recycle(blocker)
    [dup] = copies
    assert dup is not source
    assert dup.payload is source.payload
    assert dup.instrument == "BTC-USDT"
    recycler.recycle_all([source, dup])


async def test_duplicate_of_a_recycled_source_raises_and_lends_nothing(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    source = await pool.acquire()
    recycler.recycle(source)
    with pytest.raises(UseAfterRecycleError):
        await pool.duplicate(source)
    assert pool.statistics().in_use == 0
    assert not recycler.leak_report()


def test_duplicate_nowait_of_a_foreign_type_lends_nothing_in_production(
    production: Recycler,
) -> None:
    @attrs.define(eq=False)
    class NotAnEvent:
        event_id: int = 1

    pool = EventPool(Event, recycler=production, capacity=1)
    stray: Any = NotAnEvent()
    with pytest.raises(AttributeError):
        pool.duplicate_nowait(stray)
    assert pool.statistics().in_use == 0
    reused = pool.acquire_nowait()
    assert reused.as_tuple() == _blank()  # the half-made copy was reset on its way back
    production.recycle(reused)


# -- acquire: waiting and exhaustion ---------------------------------------------


async def test_acquire_returns_at_once_when_an_object_is_free(
    pool: EventPool[Event], recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    start = trio.current_time()
    obj = await pool.acquire()
    assert trio.current_time() == start
    assert pool.statistics().waits == 0
    recycler.recycle(obj)


async def test_acquire_raises_pool_exhausted_after_max_wait(
    recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=2, max_wait=0.5, name="tight")
    held = [pool.acquire_nowait(), pool.acquire_nowait()]
    start = trio.current_time()
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire()
    assert trio.current_time() - start == pytest.approx(0.5)
    err = caught.value
    assert (err.pool, err.capacity) == ("tight", 2)
    assert err.waited == pytest.approx(0.5)
    assert "tight" in str(err)
    stats = pool.statistics()
    assert (stats.waits, stats.exhausted, stats.in_use, stats.heap_fallbacks) == (1, 1, 2, 0)
    recycler.recycle_all(held)


async def test_acquire_max_wait_argument_overrides_the_pool_default(
    recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=1, max_wait=0.5)
    held = pool.acquire_nowait()
    start = trio.current_time()
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire(max_wait=3.0)
    assert trio.current_time() - start == pytest.approx(3.0)
    assert caught.value.waited == pytest.approx(3.0)
    recycler.recycle(held)


async def test_acquire_with_zero_max_wait_gives_up_without_advancing_the_clock(
    recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=1, max_wait=0)
    held = pool.acquire_nowait()
    start = trio.current_time()
    with pytest.raises(PoolExhausted) as caught:
        await pool.acquire()
    assert trio.current_time() == start
    assert caught.value.waited == 0
    recycler.recycle(held)


async def test_heap_policy_lends_a_counted_heap_object_after_max_wait(
    recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    pool = EventPool(
        Event, recycler=recycler, capacity=1, max_wait=0.25, on_exhausted=Exhaustion.HEAP
    )
    held = pool.acquire_nowait()
    start = trio.current_time()
    extra = await pool.acquire()
    assert trio.current_time() - start == pytest.approx(0.25)
    assert extra is not held
    assert isinstance(extra, Event)
    assert extra.as_tuple() == _blank()
    stats = pool.statistics()
    assert (stats.in_use, stats.acquired, stats.waits, stats.exhausted) == (1, 1, 1, 1)
    assert (stats.heap_fallbacks, stats.heap_in_use) == (1, 1)
    assert recycler.statistics().outstanding == 2

    recycler.recycle(extra)
    stats = pool.statistics()
    assert (stats.heap_fallbacks, stats.heap_in_use, stats.recycled, stats.in_use) == (1, 0, 0, 1)
    assert recycler.statistics().recycled == 1
    recycler.recycle(held)


async def test_heap_objects_are_reset_but_never_kept_by_the_pool(
    production: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    pool = EventPool(
        Event, recycler=production, capacity=1, max_wait=0.1, on_exhausted=Exhaustion.HEAP
    )
    held = pool.acquire_nowait()
    extra = await pool.acquire()
    _stamp_every_field(extra)
    production.recycle(extra)
    assert extra.as_tuple() == _blank()
    production.recycle(held)

    again = pool.acquire_nowait()
    assert again is held
    with pytest.raises(trio.WouldBlock):
        pool.acquire_nowait()
    assert pool.statistics().heap_in_use == 0
    production.recycle(again)


async def test_recycle_wakes_a_waiting_acquire_before_its_deadline(
    recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=1, max_wait=10.0)
    held = pool.acquire_nowait()
    got: list[Event] = []

    async def acquirer() -> None:
        got.append(await pool.acquire())

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(acquirer)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        assert pool.statistics().waits == 1
        recycler.recycle(held)
    assert trio.current_time() == start
    assert len(got) == 1
    assert got[0] is not held
    assert pool.statistics().exhausted == 0
    recycler.recycle(got[0])


async def test_acquire_cancelled_while_waiting_takes_nothing(
    recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=1, max_wait=10.0)
    held = pool.acquire_nowait()
    with trio.move_on_after(1.0) as scope:
        await pool.acquire()
    assert scope.cancelled_caught
    stats = pool.statistics()
    assert (stats.in_use, stats.acquired, stats.exhausted) == (1, 1, 0)
    assert len(recycler.leak_report().leases) == 1
    recycler.recycle(held)
    recycler.recycle(pool.acquire_nowait())


async def test_acquire_cancelled_before_it_starts_takes_nothing(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await pool.acquire()
    assert scope.cancelled_caught
    assert pool.statistics().acquired == 0
    assert not recycler.leak_report()


# -- statistics ----------------------------------------------------------------


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_statistics_count_leases_and_keep_the_high_water_mark(debug: bool) -> None:
    recycler = Recycler(debug=debug)
    pool = EventPool(Event, recycler=recycler, capacity=4, name="stats")
    first = [pool.acquire_nowait() for _ in range(3)]
    recycler.recycle_all(first[:2])
    later = pool.acquire_nowait()

    stats = pool.statistics()
    assert stats.name == "stats"
    assert stats.capacity == 4
    assert stats.in_use == 2
    assert stats.high_water == 3
    assert (stats.acquired, stats.recycled) == (4, 2)
    assert (stats.waits, stats.exhausted, stats.heap_fallbacks, stats.heap_in_use) == (0, 0, 0, 0)
    assert stats.utilisation == pytest.approx(0.5)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.in_use = 0  # type: ignore[misc]
    recycler.recycle_all([first[2], later])
    assert pool.statistics().utilisation == 0
