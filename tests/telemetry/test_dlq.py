"""DeadLetterQueue: what an entry keeps, the bound (oldest dropped, counted), validation."""

from __future__ import annotations

import re

import pytest

from meltica_trio import DeadLetter, Event, Kind, Side, Trade
from meltica_trio.telemetry import DeadLetterQueue, DeadLetterStatistics
from meltica_trio.telemetry._dlq import DLQ_CAPACITY


def _event(event_id: int) -> Event:
    # The DLQ only reads an event's coordinates, so an unpooled envelope will do.
    return Event(
        event_id=event_id,
        kind=Kind.TRADE,
        provider="binance",
        instrument="BTC-USDT",
        seq=1000 + event_id,
        trace_id=f"trace-{event_id}",
        decision_id=f"decision-{event_id}",
        payload=Trade(price="1.5", size="2", side=Side.BUY, trade_id="t", trade_ts=1),
    )


def _raised(message: str) -> ValueError:
    def strategy_body() -> None:
        raise ValueError(message)

    try:
        strategy_body()
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")  # pragma: no cover


def _fill(dlq: DeadLetterQueue, count: int) -> None:
    for event_id in range(1, count + 1):
        dlq.record(f"consumer-{event_id}", _event(event_id), _raised(f"boom {event_id}"), event_id)


def test_an_entry_keeps_the_consumer_the_event_coordinates_and_the_traceback() -> None:
    dlq = DeadLetterQueue()
    event = _event(7)
    letter = dlq.record("momentum", event, _raised("bad price"), 123_456)

    assert letter == DeadLetter(
        letter_id=letter.letter_id,
        consumer_id="momentum",
        trace_id="trace-7",
        decision_id="decision-7",
        event_id=7,
        kind="trade",
        provider="binance",
        instrument="BTC-USDT",
        seq=1007,
        payload=event.payload,
        error="ValueError: bad price",
        traceback=letter.traceback,
        wall_ns=123_456,
    )
    assert re.fullmatch("[0-9a-f]{12}", letter.letter_id)
    assert letter.traceback.startswith("Traceback (most recent call last):")
    assert "in strategy_body" in letter.traceback
    assert letter.traceback.rstrip().endswith("ValueError: bad price")
    assert dlq.entries() == (letter,)
    assert len(dlq) == 1


def test_every_entry_gets_its_own_id() -> None:
    dlq = DeadLetterQueue()
    _fill(dlq, 50)
    assert len({letter.letter_id for letter in dlq.entries()}) == 50


def test_an_exception_never_raised_is_recorded_without_frames() -> None:
    dlq = DeadLetterQueue()
    letter = dlq.record("c", _event(1), KeyError("missing"), 0)
    assert letter.error == "KeyError: 'missing'"
    assert letter.traceback == "KeyError: 'missing'\n"


def test_a_full_dlq_drops_its_oldest_entries_and_counts_them() -> None:
    dlq = DeadLetterQueue(capacity=3)
    _fill(dlq, 5)
    assert [letter.event_id for letter in dlq.entries()] == [3, 4, 5]
    assert len(dlq) == 3
    assert dlq.statistics() == DeadLetterStatistics(held=3, recorded=5, dropped=2)


def test_a_dlq_below_capacity_drops_nothing() -> None:
    dlq = DeadLetterQueue(capacity=3)
    _fill(dlq, 3)
    assert [letter.event_id for letter in dlq.entries()] == [1, 2, 3]
    assert dlq.statistics() == DeadLetterStatistics(held=3, recorded=3, dropped=0)


def test_an_empty_dlq_reports_nothing() -> None:
    dlq = DeadLetterQueue()
    assert dlq.entries() == ()
    assert len(dlq) == 0
    assert dlq.statistics() == DeadLetterStatistics(held=0, recorded=0, dropped=0)


def test_the_default_capacity_is_the_named_constant() -> None:
    assert DeadLetterQueue().capacity == DLQ_CAPACITY == 10_000


@pytest.mark.parametrize("capacity", [0, -1])
def test_a_capacity_below_one_is_refused(capacity: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DeadLetterQueue(capacity=capacity)
