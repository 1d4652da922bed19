"""Many tasks blocked in ``EventPool.acquire`` on a full pool, on the mock trio clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from meltica_trio import Event, EventPool, Exhaustion, PoolExhausted, Recycler

_DEBUG_IDS = ["debug", "production"]


def _assert_distinct(objs: list[Event]) -> None:
    assert len({id(obj) for obj in objs}) == len(objs), "one object lent to two holders"


@pytest.mark.parametrize("debug", [True, False], ids=_DEBUG_IDS)
async def test_blocked_acquirers_are_each_served_once_as_objects_come_back(
    debug: bool, autojump_clock: trio.testing.MockClock
) -> None:
    recycler = Recycler(debug=debug)
    pool = EventPool(Event, recycler=recycler, capacity=3, max_wait=100.0)
    held = [pool.acquire_nowait() for _ in range(3)]
    served: list[tuple[int, Event]] = []

    async def acquirer(task: int) -> None:
        served.append((task, await pool.acquire()))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for task in range(5):
            nursery.start_soon(acquirer, task)
        await trio.testing.wait_all_tasks_blocked()
        assert served == []
        assert pool.statistics().waits == 5

        # Hand back one object at a time: exactly one more waiter is served each time.
        for returned in range(5):
            recycler.recycle(held.pop(0))
            await trio.testing.wait_all_tasks_blocked()
            assert len(served) == returned + 1
            held.append(served[-1][1])
            _assert_distinct(held)
            assert pool.statistics().in_use == 3

    assert sorted(task for task, _ in served) == list(range(5))
    assert trio.current_time() == start  # nobody waited until the deadline
    stats = pool.statistics()
    assert (stats.exhausted, stats.heap_fallbacks) == (0, 0)
    recycler.recycle_all(held)
    assert not recycler.leak_report()


@pytest.mark.parametrize("debug", [True, False], ids=_DEBUG_IDS)
async def test_waiters_past_max_wait_get_pool_exhausted(
    debug: bool, autojump_clock: trio.testing.MockClock
) -> None:
    recycler = Recycler(debug=debug)
    pool = EventPool(Event, recycler=recycler, capacity=2, max_wait=1.0, name="busy")
    held = [pool.acquire_nowait() for _ in range(2)]
    served: list[tuple[float, Event]] = []
    exhausted: list[tuple[float, PoolExhausted]] = []

    async def acquirer() -> None:
        try:
            obj = await pool.acquire()
        except PoolExhausted as exc:
            exhausted.append((trio.current_time(), exc))
        else:
            served.append((trio.current_time(), obj))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(acquirer)
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(0.5)  # mock clock: half the deadline passes
        recycler.recycle(held.pop())

    [(served_at, obj)] = served
    assert served_at - start == pytest.approx(0.5)
    assert len(exhausted) == 3
    for gave_up_at, exc in exhausted:
        assert gave_up_at - start == pytest.approx(1.0)
        assert exc.waited == pytest.approx(1.0)
        assert (exc.pool, exc.capacity) == ("busy", 2)
    stats = pool.statistics()
    assert (stats.waits, stats.exhausted, stats.in_use, stats.heap_fallbacks) == (4, 3, 2, 0)
    recycler.recycle_all([*held, obj])
    assert not recycler.leak_report()


@pytest.mark.parametrize("debug", [True, False], ids=_DEBUG_IDS)
async def test_waiters_past_max_wait_get_heap_objects_under_the_heap_policy(
    debug: bool, autojump_clock: trio.testing.MockClock
) -> None:
    recycler = Recycler(debug=debug)
    pool = EventPool(
        Event, recycler=recycler, capacity=2, max_wait=1.0, on_exhausted=Exhaustion.HEAP
    )
    held = [pool.acquire_nowait() for _ in range(2)]
    served: list[tuple[float, Event]] = []

    async def acquirer() -> None:
        obj = await pool.acquire()
        served.append((trio.current_time(), obj))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(acquirer)
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(0.5)
        recycler.recycle(held.pop())

    times = sorted(at - start for at, _ in served)
    assert times == pytest.approx([0.5, 1.0, 1.0, 1.0])
    objs = [obj for _, obj in served]
    _assert_distinct([*held, *objs])
    stats = pool.statistics()
    assert (stats.in_use, stats.exhausted) == (2, 3)
    assert (stats.heap_fallbacks, stats.heap_in_use) == (3, 3)
    assert recycler.statistics().outstanding == 5
    recycler.recycle_all([*held, *objs])
    stats = pool.statistics()
    assert (stats.in_use, stats.heap_in_use) == (0, 0)
    assert not recycler.leak_report()


async def test_a_cancelled_waiter_does_not_swallow_the_next_wakeup(
    recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=1, max_wait=100.0)
    held = pool.acquire_nowait()
    served: list[Event] = []
    cancelled = trio.CancelScope()

    async def doomed() -> None:
        with cancelled:
            served.append(await pool.acquire())

    async def patient() -> None:
        served.append(await pool.acquire())

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(doomed)
        nursery.start_soon(patient)
        await trio.testing.wait_all_tasks_blocked()
        cancelled.cancel()
        await trio.testing.wait_all_tasks_blocked()
        recycler.recycle(held)

    assert cancelled.cancelled_caught
    assert len(served) == 1
    assert trio.current_time() == start
    stats = pool.statistics()
    assert (stats.waits, stats.exhausted, stats.in_use) == (2, 0, 1)
    recycler.recycle(served[0])


async def test_a_burst_of_returns_serves_every_waiter(
    recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=4, max_wait=100.0)
    held = [pool.acquire_nowait() for _ in range(4)]
    served: list[Event] = []

    async def acquirer() -> None:
        served.append(await pool.acquire())

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(acquirer)
        await trio.testing.wait_all_tasks_blocked()
        recycler.recycle_all(held)  # four returns before any waiter runs

    assert len(served) == 4
    _assert_distinct(served)
    assert trio.current_time() == start
    recycler.recycle_all(served)


async def test_a_woken_waiter_that_loses_the_object_keeps_waiting(
    recycler: Recycler, autojump_clock: trio.testing.MockClock
) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=1, max_wait=10.0)
    held = pool.acquire_nowait()
    served: list[tuple[float, Event]] = []

    async def waiter() -> None:
        obj = await pool.acquire()
        served.append((trio.current_time(), obj))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        recycler.recycle(held)  # wakes the waiter...
        barger = pool.acquire_nowait()  # ...but this takes the object before it runs
        await trio.testing.wait_all_tasks_blocked()
        assert served == []
        await trio.sleep(2.0)
        recycler.recycle(barger)

    [(served_at, obj)] = served
    assert served_at - start == pytest.approx(2.0)
    stats = pool.statistics()
    assert (stats.waits, stats.exhausted, stats.in_use) == (1, 0, 1)
    recycler.recycle(obj)
