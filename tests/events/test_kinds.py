"""Every kind's delivery class (DESIGN.md section 3) and payload class."""

from __future__ import annotations

import pytest

from meltica_trio.events import (
    DELIVERY_CLASS,
    PAYLOAD_TYPE,
    BookDelta,
    BookSnapshot,
    BookStatus,
    ControlAck,
    ControlResult,
    DeliveryClass,
    ExecReport,
    Kind,
    Kline,
    MergedTopOfBook,
    Ticker,
    Trade,
)

# Written out from the design's table, not derived from the code under test.
DESIGNED_DELIVERY: dict[Kind, DeliveryClass] = {
    Kind.EXEC_REPORT: DeliveryClass.CRITICAL,
    Kind.CONTROL_ACK: DeliveryClass.CRITICAL,
    Kind.CONTROL_RESULT: DeliveryClass.CRITICAL,
    Kind.BOOK_STATUS: DeliveryClass.CRITICAL,
    Kind.TRADE: DeliveryClass.SEQUENCED,
    Kind.BOOK_DELTA: DeliveryClass.SEQUENCED,
    Kind.TICKER: DeliveryClass.LATEST,
    Kind.BOOK_SNAPSHOT: DeliveryClass.LATEST,
    Kind.KLINE: DeliveryClass.LATEST,
    Kind.MERGED: DeliveryClass.LATEST,
}

DESIGNED_PAYLOAD: dict[Kind, type] = {
    Kind.TRADE: Trade,
    Kind.BOOK_SNAPSHOT: BookSnapshot,
    Kind.BOOK_DELTA: BookDelta,
    Kind.TICKER: Ticker,
    Kind.KLINE: Kline,
    Kind.MERGED: MergedTopOfBook,
    Kind.EXEC_REPORT: ExecReport,
    Kind.CONTROL_ACK: ControlAck,
    Kind.CONTROL_RESULT: ControlResult,
    Kind.BOOK_STATUS: BookStatus,
}


def test_design_tables_cover_every_kind() -> None:
    assert set(DESIGNED_DELIVERY) == set(Kind)
    assert set(DESIGNED_PAYLOAD) == set(Kind)


def test_lookup_tables_have_exactly_one_entry_per_kind() -> None:
    assert set(DELIVERY_CLASS) == set(Kind)
    assert set(PAYLOAD_TYPE) == set(Kind)


@pytest.mark.parametrize("kind", list(Kind))
def test_kind_has_the_delivery_class_of_the_design(kind: Kind) -> None:
    assert kind.delivery_class is DESIGNED_DELIVERY[kind]
    assert DELIVERY_CLASS[kind] is DESIGNED_DELIVERY[kind]


@pytest.mark.parametrize("kind", list(Kind))
def test_kind_carries_the_payload_class_of_the_design(kind: Kind) -> None:
    assert PAYLOAD_TYPE[kind] is DESIGNED_PAYLOAD[kind]


@pytest.mark.parametrize("kind", list(Kind))
def test_only_critical_kinds_are_critical(kind: Kind) -> None:
    assert kind.is_critical is (DESIGNED_DELIVERY[kind] is DeliveryClass.CRITICAL)


def test_each_payload_class_belongs_to_one_kind() -> None:
    assert len(set(PAYLOAD_TYPE.values())) == len(Kind)


def test_lookup_tables_cannot_be_changed_at_runtime() -> None:
    with pytest.raises(TypeError):
        DELIVERY_CLASS[Kind.TRADE] = DeliveryClass.LATEST  # type: ignore[index]
    with pytest.raises(TypeError):
        PAYLOAD_TYPE[Kind.TRADE] = Ticker  # type: ignore[index]


def test_kind_values_are_the_wire_names() -> None:
    assert {kind.value for kind in Kind} == {
        "trade",
        "book_snapshot",
        "book_delta",
        "ticker",
        "kline",
        "merged",
        "exec_report",
        "control_ack",
        "control_result",
        "book_status",
    }
