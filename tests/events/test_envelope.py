"""The pooled envelope: copy and reset cover every field, payloads are shared."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given

from meltica_trio._defaults import SCHEMA_VERSION
from meltica_trio.events import Event, Kind, Side, Trade
from meltica_trio.testing import events

# Derived, not listed: a field added to Event and forgotten in _copy_from, _reset or
# as_tuple makes these tests fail.
FIELDS: tuple[str, ...] = tuple(field.name for field in attrs.fields(Event))


class Marker:
    """A value no real field holds, so a field left untouched cannot pass by chance."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<marker {self.name}>"


def _marked() -> Event:
    event = Event()
    for name in FIELDS:
        setattr(event, name, Marker(name))
    return event


def test_event_has_the_designed_envelope_fields() -> None:
    assert set(FIELDS) >= {
        "event_id",
        "kind",
        "provider",
        "instrument",
        "seq",
        "ingest_ts",
        "emit_ts",
        "routing_version",
        "trace_id",
        "decision_id",
        "schema_version",
        "payload",
    }


@pytest.mark.parametrize("name", FIELDS)
def test_copy_from_copies_field(name: str) -> None:
    source = _marked()
    target = Event()
    target._copy_from(source)
    assert getattr(target, name) is getattr(source, name)


@pytest.mark.parametrize("name", FIELDS)
def test_reset_blanks_field_to_its_default(name: str) -> None:
    event = _marked()
    event._reset()
    assert getattr(event, name) == getattr(Event(), name)


def test_reset_event_matches_a_new_event() -> None:
    event = _marked()
    event._reset()
    assert event.as_tuple() == Event().as_tuple()


def test_new_event_is_a_blank_trade_of_the_current_schema() -> None:
    event = Event()
    assert event.kind is Kind.TRADE
    assert event.schema_version == SCHEMA_VERSION
    assert event.payload is None
    assert event.seq is None


def test_as_tuple_lists_every_field_in_declaration_order() -> None:
    event = _marked()
    assert event.as_tuple() == tuple(getattr(event, name) for name in FIELDS)


def test_copy_shares_the_payload_object() -> None:
    trade = Trade(price="57000.1", size="0.02", side=Side.BUY, trade_id="9911", trade_ts=1)
    source = Event(event_id=7, kind=Kind.TRADE, payload=trade)
    duplicate = Event()
    duplicate._copy_from(source)
    assert duplicate.payload is trade


@given(events())
def test_copy_has_the_same_contents_and_is_another_object(event: Event) -> None:
    duplicate = Event()
    duplicate._copy_from(event)
    assert duplicate.as_tuple() == event.as_tuple()
    assert duplicate is not event
    assert duplicate.payload is event.payload


def test_events_compare_by_identity_not_contents() -> None:
    first, second = Event(), Event()
    assert first.as_tuple() == second.as_tuple()
    assert first != second
    assert first == first
    assert len({first, second}) == 2
