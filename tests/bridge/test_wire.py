"""Stream entries and key names: round trips, and strict refusal of everything else."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_trio import DecodeError, Event, Kind, Side
from meltica_trio.bridge import Attachment, StreamNames
from meltica_trio.bridge._wire import (
    RemoteCommand,
    apply_id,
    attachment_fields,
    command_fields,
    critical_fields,
    decode_control,
    decode_entry,
    market_fields,
    market_kind,
)
from meltica_trio.bus import CancelOrder, QueryOrder, SubmitOrder
from meltica_trio.events import CRITICAL_KINDS
from meltica_trio.testing import events, exec_reports

_examples = settings(max_examples=50, deadline=None)  # a shared, busy machine: no deadline
_texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@_examples
@given(events())
def test_a_critical_entry_decodes_to_the_same_event_and_apply_id(event: Event) -> None:
    decoded, apply = decode_entry(critical_fields(event, apply_id(event, "run-1")))
    assert decoded.as_tuple() == event.as_tuple()
    assert apply == apply_id(event, "run-1")


@_examples
@given(events(k for k in Kind if k not in CRITICAL_KINDS))
def test_a_market_entry_decodes_without_an_apply_id(event: Event) -> None:
    decoded, apply = decode_entry(market_fields(event))
    assert (decoded.as_tuple(), apply) == (event.as_tuple(), None)
    assert market_kind(decoded) is event.kind


@_examples
@given(exec_reports(), st.integers(min_value=1))
def test_reports_are_applied_by_exec_id_and_other_events_by_origin(report: object, n: int) -> None:
    as_report = Event(event_id=n, kind=Kind.EXEC_REPORT, payload=report)  # type: ignore[arg-type]
    assert apply_id(as_report, "run-1") == f"exec:{report.exec_id}"  # type: ignore[attr-defined]
    assert apply_id(as_report, "run-2") == apply_id(as_report, "run-1")
    status = Event(event_id=n, kind=Kind.BOOK_STATUS)
    assert apply_id(status, "run-1") == f"run-1:{n}"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "needs an 'e' field"),
        ({b"e": b"{", b"id": b"1"}, "malformed JSON"),
        ({b"e": b"{}", b"zz": b"1"}, "unexpected field"),
        ({b"e": b"{}"}, "schema_version"),
    ],
)
def test_malformed_data_entries_are_decode_errors(fields: dict[bytes, bytes], reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_entry(fields)


@_examples
@given(events(CRITICAL_KINDS))
def test_an_empty_or_binary_apply_id_and_critical_market_data_are_refused(event: Event) -> None:
    fields = critical_fields(event, "x")
    with pytest.raises(DecodeError, match="empty"):
        decode_entry({**fields, b"id": b""})
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_entry({**fields, b"id": b"\xff"})
    with pytest.raises(DecodeError, match="market data stream"):
        market_kind(decode_entry(fields)[0])


@_examples
@given(
    st.sampled_from([SubmitOrder, CancelOrder, QueryOrder]),
    _texts.filter(bool),
    st.one_of(st.none(), _texts),
)
def test_order_commands_round_trip_through_the_control_stream(
    cls: type[RemoteCommand], client_order_id: str, price: str | None
) -> None:
    if cls is SubmitOrder:
        command: RemoteCommand = SubmitOrder(
            consumer_id="g1",
            client_order_id=client_order_id,
            provider="sim",
            instrument="BTC-USDT",
            side=Side.SELL,
            quantity="1",
            price=price,
        )
    else:
        command = cls(consumer_id="g1", client_order_id=client_order_id)
    assert decode_control(command_fields(command)) == command


@_examples
@given(
    st.one_of(st.none(), st.frozensets(st.sampled_from(["BTC-USDT", "ETH-USDT"]))),
    st.one_of(st.none(), st.frozensets(st.sampled_from(list(Kind)))),
)
def test_attachments_round_trip(
    instruments: frozenset[str] | None, kinds: frozenset[Kind] | None
) -> None:
    attachment = Attachment(group="g-1.a", instruments=instruments, kinds=kinds)
    assert decode_control(attachment_fields(attachment)) == attachment


def _command_body(**changes: object) -> dict[bytes, bytes]:
    body = {
        "command": "cancel_order",
        "consumer_id": "g1",
        "client_order_id": "o-1",
        "command_id": "c-1",
    }
    return {b"t": b"command", b"b": orjson.dumps(body | changes)}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({b"t": b"command"}, "exactly the fields"),
        ({b"t": b"command", b"b": b"[1]"}, "JSON object"),
        ({b"t": b"command", b"b": b"{"}, "malformed JSON"),
        ({b"t": b"shout", b"b": b"{}"}, "unknown control entry type"),
        (_command_body(command="set_trading_switch"), "may not come from a worker"),
        (_command_body(command=None), "may not come from a worker"),
        (_command_body(extra=1), "unexpected \\['extra'\\]"),
        (_command_body(client_order_id=7), "expected a string"),
        (
            {b"t": b"command", b"b": orjson.dumps({"command": "cancel_order"})},
            "missing \\['client_order_id', 'command_id', 'consumer_id'\\]",
        ),
        ({b"t": b"attach", b"b": b'{"group": "g1"}'}, "exactly the fields"),
        (
            {
                b"t": b"attach",
                b"b": orjson.dumps(dict.fromkeys(["group", "kinds", "instruments", "providers"])),
            },
            "group",
        ),
        (
            {
                b"t": b"attach",
                b"b": orjson.dumps(
                    {"group": "g1", "instruments": "BTC-USDT", "kinds": None, "providers": None}
                ),
            },
            "array of strings",
        ),
        (
            {
                b"t": b"attach",
                b"b": orjson.dumps(
                    {"group": "g1", "instruments": None, "kinds": ["nope"], "providers": None}
                ),
            },
            "nope",
        ),
    ],
)
def test_malformed_control_entries_are_decode_errors(
    fields: dict[bytes, bytes], reason: str
) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_control(fields)


def test_submit_order_with_an_unknown_side_is_refused() -> None:
    body = {
        "command": "submit_order",
        "consumer_id": "g1",
        "client_order_id": "o-1",
        "provider": "sim",
        "instrument": "BTC-USDT",
        "side": "sideways",
        "quantity": "1",
        "price": None,
        "decision_id": None,
        "trace_id": None,
        "command_id": "c-1",
    }
    with pytest.raises(DecodeError, match="sideways"):
        decode_control({b"t": b"command", b"b": orjson.dumps(body)})


def test_stream_names_are_documented_and_market_names_parse_back() -> None:
    names = StreamNames("p")
    market = names.market("binance", "BTC-USDT", Kind.BOOK_DELTA)
    assert market == "p:md:binance:BTC-USDT:book_delta"
    assert names.parse_market(market) == ("binance", "BTC-USDT", Kind.BOOK_DELTA)
    assert names.parse_market("p:md:x:book_delta") is None
    assert names.parse_market("p:md:a:B-C:no_such_kind") is None
    assert names.parse_market("q:md:a:B-C:trade") is None
    assert (names.critical("g"), names.control, names.topics, names.remotes) == (
        "p:crit:g",
        "p:control",
        "p:topics",
        "p:remotes",
    )
    assert names.applied("g", "exec:1") == "p:applied:g:exec:1"
    assert names.dlq("bridge") == "p:dlq:bridge"
    assert StreamNames().prefix == "meltica"


@pytest.mark.parametrize("prefix", ["", "a:b", "a b", 3])
def test_a_prefix_with_a_separator_or_space_is_refused(prefix: object) -> None:
    with pytest.raises(ValueError, match="prefix"):
        StreamNames(prefix)  # type: ignore[arg-type]
