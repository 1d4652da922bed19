"""Payloads are immutable values: frozen, equal and hashable by content."""

from __future__ import annotations

import attrs
import pytest
from attrs.exceptions import FrozenInstanceError
from hypothesis import given
from hypothesis import strategies as st

from meltica_trio.events import PAYLOAD_TYPE, Kind, Payload, Side, Trade
from meltica_trio.testing import payloads

any_payload = st.one_of([payloads(kind) for kind in Kind])


def _copy(payload: Payload) -> Payload:
    return type(payload)(**attrs.asdict(payload, recurse=False))


@pytest.mark.parametrize("cls", list(PAYLOAD_TYPE.values()), ids=lambda cls: cls.__name__)
def test_payload_class_is_a_slotted_attrs_class(cls: type) -> None:
    assert attrs.has(cls)
    assert "__slots__" in vars(cls)
    assert "__dict__" not in vars(cls)


@given(any_payload)
def test_assigning_any_payload_field_raises(payload: Payload) -> None:
    for field in attrs.fields(type(payload)):
        with pytest.raises(FrozenInstanceError):
            setattr(payload, field.name, getattr(payload, field.name))


@given(any_payload)
def test_deleting_any_payload_field_raises(payload: Payload) -> None:
    for field in attrs.fields(type(payload)):
        with pytest.raises(FrozenInstanceError):
            delattr(payload, field.name)


@given(any_payload)
def test_payloads_with_equal_fields_are_equal_and_hash_alike(payload: Payload) -> None:
    twin = _copy(payload)
    assert twin is not payload
    assert twin == payload
    assert hash(twin) == hash(payload)
    assert len({payload, twin}) == 1


def test_payloads_differing_in_one_field_are_unequal() -> None:
    trade = Trade(price="57000.1", size="0.02", side=Side.BUY, trade_id="1", trade_ts=1)
    assert attrs.evolve(trade, price="57000.10") != trade
    assert attrs.evolve(trade, side=Side.SELL) != trade
    assert len({trade, attrs.evolve(trade, trade_id="2")}) == 2


@given(any_payload)
def test_payload_collections_are_tuples(payload: Payload) -> None:
    def mutable_parts(value: object) -> list[object]:
        if isinstance(value, list | dict | set):
            return [value]
        if isinstance(value, tuple):
            return [part for item in value for part in mutable_parts(item)]
        if attrs.has(type(value)):
            fields = attrs.fields(type(value))
            return [part for f in fields for part in mutable_parts(getattr(value, f.name))]
        return []

    assert mutable_parts(payload) == []
