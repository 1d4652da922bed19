"""The Recycler: reset and return, foreign objects, poisoning, double puts, leak reports."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import attrs
import pytest

from meltica_trio import (
    DoublePutError,
    Event,
    EventPool,
    Exhaustion,
    ForeignObjectError,
    LifecycleError,
    Recycler,
    Side,
    Trade,
    UseAfterRecycleError,
)
from meltica_trio.lifecycle import Pooled

_RECYCLER_LOGGER = "meltica_trio.lifecycle._recycler"


@attrs.define(eq=False, kw_only=True)
class Order(Pooled):
    """An order-like pooled structure, to show the lifecycle is not specific to Event."""

    client_id: str = ""
    side: Side = Side.BUY
    price: str = "0"
    quantity: str = "0"
    fills: tuple[str, ...] = ()

    def _reset(self) -> None:
        self.client_id = ""
        self.side = Side.BUY
        self.price = "0"
        self.quantity = "0"
        self.fills = ()

    def _copy_from(self, other: Order) -> None:
        self.client_id = other.client_id
        self.side = other.side
        self.price = other.price
        self.quantity = other.quantity
        self.fills = other.fills


def _trade() -> Trade:
    return Trade(price="39000.5", size="0.25", side=Side.SELL, trade_id="t-9", trade_ts=9)


def _line() -> int:
    """The caller's current line, to predict the call site a lease records."""
    return sys._getframe(1).f_lineno


def _site(line: int, function: str) -> str:
    return f"{__file__}:{line} in {function}"


@pytest.fixture
def production() -> Iterator[Recycler]:
    """A production-mode recycler; the test fails if a lease is still out at its end."""
    recycler = Recycler(debug=False)
    yield recycler
    report = recycler.leak_report()
    assert not report, str(report)


# -- the way back ----------------------------------------------------------------


def test_recycle_resets_every_field_and_production_lends_it_again(production: Recycler) -> None:
    pool = EventPool(Event, recycler=production, capacity=1)
    event = pool.acquire_nowait()
    event.instrument = "BTC-USDT"
    event.seq = 42
    event.trace_id = "trace"
    event.payload = _trade()
    production.recycle(event)
    assert event.as_tuple() == Event().as_tuple()
    assert event.payload is None
    again = pool.acquire_nowait()
    assert again is event
    production.recycle(again)


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_recycler_lends_and_takes_back_any_pooled_class(debug: bool) -> None:
    recycler = Recycler(debug=debug)
    pool = EventPool(Order, recycler=recycler, capacity=2)
    order = pool.acquire_nowait()
    assert isinstance(order, Order)
    order.client_id = "c-1"
    order.side = Side.SELL
    order.fills = ("0.1", "0.2")
    dup = pool.duplicate_nowait(order)
    assert dup.fills is order.fills
    assert (dup.client_id, dup.side) == ("c-1", Side.SELL)

    recycler.recycle(dup)
    if debug:
        assert isinstance(dup, Order)
        with pytest.raises(UseAfterRecycleError):
            _ = dup.fills
    else:
        assert attrs.astuple(dup) == attrs.astuple(Order())
    assert order.fills == ("0.1", "0.2")  # recycling the copy left the original alone
    recycler.recycle(order)
    stats = recycler.statistics()
    assert (stats.recycled, stats.outstanding) == (2, 0)
    assert stats.pools[0].name == "Order"


def test_recycle_all_returns_every_object(pool: EventPool[Event], recycler: Recycler) -> None:
    lent = [pool.acquire_nowait() for _ in range(3)]
    recycler.recycle_all(lent)
    assert pool.statistics().in_use == 0
    assert recycler.statistics().recycled == 3


# -- foreign objects -------------------------------------------------------------------


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
@pytest.mark.parametrize("built", [Event, Order], ids=["event", "order"])
def test_recycling_a_directly_built_object_raises_foreign_object_error(
    debug: bool, built: type[Pooled]
) -> None:
    recycler = Recycler(debug=debug)
    EventPool(Event, recycler=recycler)
    with pytest.raises(ForeignObjectError, match="not lent by any pool") as caught:
        recycler.recycle(built())
    assert caught.value.obj_type == built.__name__
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, LifecycleError)
    stats = recycler.statistics()
    assert (stats.recycled, stats.double_puts) == (0, 0)


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_recycling_an_object_lent_by_another_recyclers_pool_raises(debug: bool) -> None:
    ours, theirs = Recycler(debug=debug), Recycler(debug=debug)
    EventPool(Event, recycler=ours, name="ours")
    their_pool = EventPool(Event, recycler=theirs, name="theirs")
    event = their_pool.acquire_nowait()
    event.instrument = "BTC-USDT"
    with pytest.raises(ForeignObjectError, match="'theirs' has another recycler") as caught:
        ours.recycle(event)
    assert caught.value.obj_type == "Event"
    assert event.instrument == "BTC-USDT"  # still lent and intact
    assert their_pool.statistics().in_use == 1
    assert ours.statistics().recycled == 0
    theirs.recycle(event)
    assert their_pool.statistics().in_use == 0


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
async def test_recycling_a_heap_object_through_another_recycler_raises(debug: bool) -> None:
    ours, theirs = Recycler(debug=debug), Recycler(debug=debug)
    their_pool = EventPool(
        Event, recycler=theirs, capacity=1, max_wait=0, on_exhausted=Exhaustion.HEAP, name="spill"
    )
    held = their_pool.acquire_nowait()
    extra = await their_pool.acquire()
    with pytest.raises(ForeignObjectError, match="'spill' has another recycler"):
        ours.recycle(extra)
    assert their_pool.statistics().heap_in_use == 1
    theirs.recycle_all([extra, held])
    assert not theirs.leak_report()


# -- debug mode: poisoning ---------------------------------------------------------------


def test_reading_a_recycled_object_names_where_it_was_acquired_and_recycled(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    line = _line()
    event = pool.acquire_nowait()
    recycler.recycle(event)
    with pytest.raises(UseAfterRecycleError) as caught:
        _ = event.instrument
    err = caught.value
    here = "test_reading_a_recycled_object_names_where_it_was_acquired_and_recycled"
    assert err.attribute == "instrument"
    assert err.pool == "test"
    assert err.generation == 1
    assert err.acquired_at[0] == _site(line + 1, here)
    assert err.recycled_at[0] == _site(line + 2, here)
    assert "'instrument'" in str(err)
    assert __file__ in str(err)


def test_writing_or_deleting_a_recycled_attribute_raises(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    event = pool.acquire_nowait()
    recycler.recycle(event)
    with pytest.raises(UseAfterRecycleError) as on_write:
        event.seq = 5
    assert on_write.value.attribute == "seq"
    with pytest.raises(UseAfterRecycleError) as on_delete:
        del event.trace_id
    assert on_delete.value.attribute == "trace_id"
    with pytest.raises(UseAfterRecycleError) as on_method:
        event.as_tuple()
    assert on_method.value.attribute == "as_tuple"


def test_recycled_object_stays_an_instance_and_has_a_safe_repr(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    recycler.recycle(pool.acquire_nowait())
    event = pool.acquire_nowait()
    recycler.recycle(event)
    assert isinstance(event, Event)
    assert type(event) is not Event
    assert repr(event) == "<recycled Event, lease #2>"
    assert str(event) == repr(event)


def test_debug_mode_lends_a_never_used_object_with_a_new_generation(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    first = pool.acquire_nowait()
    recycler.recycle(first)
    second = pool.acquire_nowait()
    assert second is not first
    assert type(second) is Event
    assert [lease.generation for lease in recycler.leak_report().leases] == [2]
    recycler.recycle(second)


# -- double puts -----------------------------------------------------------------


def test_double_recycle_raises_with_both_sites(pool: EventPool[Event], recycler: Recycler) -> None:
    line = _line()
    event = pool.acquire_nowait()
    recycler.recycle(event)
    with pytest.raises(DoublePutError) as caught:
        recycler.recycle(event)
    err = caught.value
    here = "test_double_recycle_raises_with_both_sites"
    assert err.acquired_at[0] == _site(line + 1, here)
    assert err.recycled_at[0] == _site(line + 2, here)
    assert __file__ in str(err)
    assert (err.pool, err.generation) == ("test", 1)
    assert isinstance(err, LifecycleError)
    stats = recycler.statistics()
    assert (stats.double_puts, stats.recycled, stats.outstanding) == (1, 1, 0)
    assert pool.statistics().recycled == 1


def test_stale_holder_recycle_raises_and_leaves_the_new_holder_untouched(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    stale = pool.acquire_nowait()  # holder A
    recycler.recycle(stale)
    current = pool.acquire_nowait()  # holder B
    current.instrument = "ETH-USDT"
    current.payload = _trade()
    assert current is not stale

    with pytest.raises(DoublePutError) as caught:
        recycler.recycle(stale)  # A puts its stale reference back
    assert caught.value.generation == 1

    assert current.instrument == "ETH-USDT"
    assert current.payload == _trade()
    current.seq = 7
    assert current.seq == 7
    stats = pool.statistics()
    assert (stats.acquired, stats.recycled, stats.in_use) == (2, 1, 1)
    assert [lease.generation for lease in recycler.leak_report().leases] == [2]
    recycler.recycle(current)
    assert pool.statistics().in_use == 0


async def test_double_recycle_of_a_heap_object_raises_in_debug_mode(recycler: Recycler) -> None:
    pool = EventPool(
        Event, recycler=recycler, capacity=1, max_wait=0, on_exhausted=Exhaustion.HEAP
    )
    held = pool.acquire_nowait()
    extra = await pool.acquire()
    assert pool.statistics().heap_in_use == 1
    recycler.recycle(extra)
    with pytest.raises(DoublePutError):
        recycler.recycle(extra)
    assert pool.statistics().heap_in_use == 0
    recycler.recycle(held)


def test_production_double_put_is_counted_logged_and_refused(
    production: Recycler, caplog: pytest.LogCaptureFixture
) -> None:
    capacity = 4
    pool = EventPool(Event, recycler=production, capacity=capacity)
    event = pool.acquire_nowait()
    production.recycle(event)
    with caplog.at_level(logging.WARNING, logger=_RECYCLER_LOGGER):
        production.recycle(event)
    assert production.statistics().double_puts == 1
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.name == _RECYCLER_LOGGER
    assert "double put" in record.getMessage()
    assert "Event" in record.getMessage()
    stats = pool.statistics()
    assert (stats.acquired, stats.recycled, stats.in_use) == (1, 1, 0)

    lent = [pool.acquire_nowait() for _ in range(capacity)]
    assert len({id(obj) for obj in lent}) == capacity
    assert pool.statistics().high_water == capacity
    production.recycle_all(lent)


async def test_production_double_put_of_a_heap_object_is_refused(production: Recycler) -> None:
    pool = EventPool(
        Event, recycler=production, capacity=1, max_wait=0, on_exhausted=Exhaustion.HEAP
    )
    held = pool.acquire_nowait()
    extra = await pool.acquire()
    assert pool.statistics().heap_in_use == 1
    production.recycle(extra)
    production.recycle(extra)
    stats = production.statistics()
    assert (stats.double_puts, stats.recycled, stats.outstanding) == (1, 1, 1)
    assert pool.statistics().heap_in_use == 0
    production.recycle(held)


# -- leak reports ----------------------------------------------------------------


def test_leak_report_in_debug_mode_names_each_acquire_site(
    pool: EventPool[Event], recycler: Recycler
) -> None:
    first_line = _line() + 1
    first = pool.acquire_nowait()
    second_line = _line() + 1
    second = pool.acquire_nowait()
    report = recycler.leak_report()
    assert report
    here = "test_leak_report_in_debug_mode_names_each_acquire_site"
    assert [(lease.pool, lease.type_name, lease.generation) for lease in report.leases] == [
        ("test", "Event", 1),
        ("test", "Event", 2),
    ]
    assert report.leases[0].acquired_at[0] == _site(first_line, here)
    assert report.leases[1].acquired_at[0] == _site(second_line, here)
    text = str(report)
    assert text.startswith("2 lease(s) outstanding:")
    assert _site(first_line, here) in text
    assert _site(second_line, here) in text

    recycler.recycle(first)
    assert [lease.generation for lease in recycler.leak_report().leases] == [2]
    recycler.recycle(second)
    report = recycler.leak_report()
    assert not report
    assert str(report) == "no leases outstanding"


async def test_leak_report_in_production_counts_leases_anonymously(
    production: Recycler,
) -> None:
    pool = EventPool(
        Event,
        recycler=production,
        capacity=2,
        max_wait=0,
        on_exhausted=Exhaustion.HEAP,
        name="prod",
    )
    lent = [pool.acquire_nowait(), pool.acquire_nowait()]
    extra = await pool.acquire()  # heap fallbacks are leases too
    report = production.leak_report()
    assert bool(report)
    assert len(report.leases) == 3
    assert {(lease.pool, lease.type_name, lease.generation) for lease in report.leases} == {
        ("prod", "Event", 0)
    }
    assert all(lease.acquired_at == () for lease in report.leases)
    assert "3 lease(s) outstanding" in str(report)
    assert "(acquire site recorded in debug mode)" in str(report)
    assert __file__ not in str(report)
    production.recycle_all([*lent, extra])
    assert not production.leak_report()


def test_leak_report_spans_every_pool_of_the_recycler(recycler: Recycler) -> None:
    events = EventPool(Event, recycler=recycler, capacity=2, name="events")
    orders = EventPool(Order, recycler=recycler, capacity=2, name="orders")
    event, order = events.acquire_nowait(), orders.acquire_nowait()
    leases = recycler.leak_report().leases
    assert [(lease.pool, lease.type_name) for lease in leases] == [
        ("events", "Event"),
        ("orders", "Order"),
    ]
    recycler.recycle_all([event, order])


# -- statistics ----------------------------------------------------------------


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_recycler_statistics_sum_over_pools(debug: bool) -> None:
    recycler = Recycler(debug=debug)
    events = EventPool(Event, recycler=recycler, capacity=3, name="events")
    orders = EventPool(Order, recycler=recycler, capacity=2, name="orders")
    lent_events = [events.acquire_nowait() for _ in range(3)]
    lent_orders = [orders.acquire_nowait() for _ in range(2)]
    recycler.recycle_all([lent_events[0], lent_orders[0]])

    stats = recycler.statistics()
    assert stats.debug is debug
    assert (stats.recycled, stats.outstanding, stats.double_puts) == (2, 3, 0)
    assert [p.name for p in stats.pools] == ["events", "orders"]
    assert stats.pools[0] == events.statistics()
    assert stats.pools[1] == orders.statistics()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.recycled = 0  # type: ignore[misc]
    recycler.recycle_all([*lent_events[1:], *lent_orders[1:]])
    assert recycler.statistics().outstanding == 0
