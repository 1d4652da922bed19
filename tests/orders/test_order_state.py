"""The order state machine: allowed steps only, exact quantities, stale updates ignored."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meltica_trio.events import OrderState
from meltica_trio.orders import (
    NEXT,
    TERMINAL,
    InvalidTransitionError,
    OrderTracker,
    VenueUpdate,
)

NEW, ACK, PARTIAL, FILLED = OrderState.NEW, OrderState.ACK, OrderState.PARTIAL, OrderState.FILLED
CANCELLED, REJECTED, EXPIRED = OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED


def update(state: OrderState, filled: str, exec_id: str | None = None, **kw: str) -> VenueUpdate:
    return VenueUpdate(
        venue_client_order_id="v",
        exec_id=exec_id or f"{state}:{filled}",
        state=state,
        filled=filled,
        **kw,
    )


def test_a_normal_life_reports_each_step_with_exact_quantities() -> None:
    order = OrderTracker.open("o-1", "1.50000000")
    assert (order.state, str(order.filled), str(order.remaining)) == (NEW, "0E-8", "1.50000000")
    [ack] = order.advance(update(ACK, "0.00000000", venue_order_id="42"))
    assert (ack.seq, ack.state, ack.filled, ack.remaining) == (1, ACK, "0.00000000", "1.50000000")
    assert ack.venue_order_id == "42"
    [part] = order.advance(update(PARTIAL, "0.50000000", last_fill_price="100.1"))
    assert (part.filled, part.remaining, part.last_fill_size) == (
        "0.50000000",
        "1.00000000",
        "0.50000000",
    )
    assert part.last_fill_price == "100.1"
    [done] = order.advance(update(FILLED, "1.50000000", last_fill_price="100.2"))
    assert (done.seq, done.state, done.remaining, done.last_fill_size) == (
        3,
        FILLED,
        "0.00000000",
        "1.00000000",
    )
    assert done.venue_order_id == "42"
    assert order.terminal


def test_a_fill_before_the_ack_reports_the_ack_first() -> None:
    order = OrderTracker.open("o-1", "2")
    steps = order.advance(update(FILLED, "2"))
    assert [(s.seq, s.state, s.filled) for s in steps] == [(1, ACK, "0"), (2, FILLED, "2")]
    assert steps[1].last_fill_size == "2"


def test_repeated_and_late_updates_are_stale() -> None:
    order = OrderTracker.open("o-1", "3")
    order.advance(update(ACK, "0", "e1"))
    assert order.advance(update(ACK, "0", "e1")) == ()  # the same exec id
    assert order.advance(update(ACK, "0", "rest")) == ()  # the same news, another id
    order.advance(update(PARTIAL, "2", "e2"))
    assert order.advance(update(PARTIAL, "1", "e3")) == ()  # late
    order.advance(update(CANCELLED, "2", "e4"))
    assert order.advance(update(PARTIAL, "2", "e5")) == ()
    assert order.advance(update(CANCELLED, "2", "rest2")) == ()
    assert (order.state, order.filled, order.transitions) == (CANCELLED, Decimal(2), 3)


@pytest.mark.parametrize(
    ("before", "bad", "reason"),
    [
        ([], update(FILLED, "4"), "exceeds the quantity"),
        ([], update(PARTIAL, "3"), "stay below"),
        ([update(ACK, "0")], update(REJECTED, "0"), "rejected cannot follow ack"),
        ([update(FILLED, "3")], update(CANCELLED, "3"), "already filled"),
        ([update(PARTIAL, "2")], update(CANCELLED, "1"), "go down"),
        ([update(ACK, "0")], update(CANCELLED, "3"), "fully filled order is FILLED"),
        ([update(ACK, "0")], update(PARTIAL, "1.5e0"), "not a plain decimal"),
    ],
)
def test_contradicting_updates_raise_and_change_nothing(
    before: list[VenueUpdate], bad: VenueUpdate, reason: str
) -> None:
    order = OrderTracker.open("o-1", "3")
    for u in before:
        order.advance(u)
    snapshot = (order.state, order.filled, order.transitions)
    with pytest.raises(InvalidTransitionError, match=reason) as info:
        order.advance(bad)
    assert info.value.client_order_id == "o-1"
    assert info.value.target == bad.state
    assert (order.state, order.filled, order.transitions) == snapshot
    assert isinstance(info.value, ValueError)


def test_direct_transitions_follow_the_table() -> None:
    order = OrderTracker.open("o-1", "1")
    with pytest.raises(InvalidTransitionError, match="filled cannot follow new"):
        order.transition(FILLED, filled=Decimal(1))
    assert order.transition(REJECTED, reason="no").reason == "no"
    with pytest.raises(InvalidTransitionError, match="already rejected"):
        order.transition(ACK)


@pytest.mark.parametrize("quantity", ["0", "-1", "1e2", "", " 1", "1."])
def test_an_order_needs_a_positive_plain_quantity(quantity: str) -> None:
    with pytest.raises(ValueError, match=r"zero|plain decimal"):
        OrderTracker.open("o-1", quantity)


_QUANTITY = "10.00"
_FILLS = st.sampled_from(["0", "0.00", "0.01", "2.5", "5", "7.25", "9.99", "10", "10.00", "11"])
_UPDATES = st.builds(
    update,
    st.sampled_from(list(OrderState)),
    _FILLS,
    st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h"]),
)


@given(st.lists(_UPDATES, max_size=40))
def test_any_update_sequence_keeps_the_order_consistent(updates: list[VenueUpdate]) -> None:
    order = OrderTracker.open("o-1", _QUANTITY)
    quantity = Decimal(_QUANTITY)
    previous, fills, seqs = NEW, Decimal(0), []
    for u in updates:
        was_terminal = order.terminal
        before = (order.state, order.filled)
        try:
            steps = order.advance(u)
        except InvalidTransitionError:
            assert (order.state, order.filled) == before
            continue
        if was_terminal:
            assert (order.state, order.filled) == before
        for step in steps:
            assert step.state in NEXT[previous]
            previous = step.state
            seqs.append(step.seq)
            assert Decimal(step.filled) + Decimal(step.remaining) == quantity
            fills += Decimal(step.last_fill_size or "0")
        assert order.state is previous
        assert Decimal(0) <= order.filled <= quantity
        assert order.filled + order.remaining == quantity
        assert fills == order.filled
        assert order.filled >= before[1]
    assert seqs == list(range(1, len(seqs) + 1))
    if order.state is FILLED:
        assert order.filled == quantity
    if order.state in TERMINAL - {FILLED}:
        assert order.filled < quantity
