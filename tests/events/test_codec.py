"""The JSON codec: lossless round trips, and a DecodeError for anything malformed."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meltica_trio import DecodeError, MelticaError
from meltica_trio._defaults import SCHEMA_VERSION
from meltica_trio.events import (
    PAYLOAD_TYPE,
    BookSnapshot,
    BookState,
    BookStatus,
    Event,
    ExecReport,
    Kind,
    MergedTopOfBook,
    OrderState,
    Side,
    Ticker,
    Trade,
    VenueTop,
    decode_event,
    encode_event,
)
from meltica_trio.events._codec import _check_for
from meltica_trio.testing import events, payloads

Document = dict[str, Any]
Mutation = Callable[[Document], object]


def _trade_event() -> Event:
    return Event(
        event_id=7,
        kind=Kind.TRADE,
        provider="binance",
        instrument="BTC-USDT",
        seq=123,
        ingest_ts=1_634_000_000_000_000_000,
        routing_version=1,
        payload=Trade(
            price="57000.1",
            size="0.02",
            side=Side.BUY,
            trade_id="9911",
            trade_ts=1_634_000_000_000_000_000,
        ),
    )


_PAYLOAD_EXAMPLES: dict[Kind, Any] = {
    Kind.TRADE: _trade_event().payload,
    Kind.TICKER: Ticker(bid_price="1", bid_size="2", ask_price="3", ask_size="4"),
    Kind.BOOK_SNAPSHOT: BookSnapshot(bids=(("100.5", "1.0"),), asks=(("101", "0.5"),)),
    Kind.EXEC_REPORT: ExecReport(
        exec_id="e1",
        consumer_id="c1",
        client_order_id="o1",
        venue_order_id=None,
        side=Side.SELL,
        price="100",
        quantity="1",
        state=OrderState.NEW,
        filled="0",
        remaining="1",
    ),
    Kind.BOOK_STATUS: BookStatus(state=BookState.LIVE, reason=None),
    Kind.MERGED: MergedTopOfBook(
        best_bid=("1", "2"),
        best_bid_provider="okx",
        best_ask=None,
        best_ask_provider=None,
        venues=(VenueTop(provider="okx", bid=("1", "2"), ask=None),),
    ),
}


def _document(kind: Kind = Kind.TRADE) -> Document:
    event = _trade_event()
    event.kind = kind
    event.payload = _PAYLOAD_EXAMPLES[kind]
    document: Document = orjson.loads(encode_event(event))
    return document


def _decode_error(document: object) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_event(orjson.dumps(document))
    return info.value


# -- round trips ---------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Kind))
@given(data=st.data())
def test_every_kind_round_trips_through_json(kind: Kind, data: st.DataObject) -> None:
    event = data.draw(events(kinds=[kind]))
    encoded = encode_event(event)
    decoded = decode_event(encoded)
    assert decoded.as_tuple() == event.as_tuple()
    assert encode_event(decoded) == encoded


def test_the_documented_wire_shape_is_what_encode_writes() -> None:
    assert orjson.loads(encode_event(_trade_event())) == {
        "event_id": 7,
        "kind": "trade",
        "provider": "binance",
        "instrument": "BTC-USDT",
        "seq": 123,
        "ingest_ts": 1_634_000_000_000_000_000,
        "emit_ts": 0,
        "routing_version": 1,
        "trace_id": None,
        "decision_id": None,
        "schema_version": SCHEMA_VERSION,
        "skipped": 0,
        "payload": {
            "price": "57000.1",
            "size": "0.02",
            "side": "buy",
            "trade_id": "9911",
            "trade_ts": 1_634_000_000_000_000_000,
        },
    }


@pytest.mark.parametrize(
    "convert",
    [bytes, bytearray, memoryview, lambda raw: raw.decode()],
    ids=["bytes", "bytearray", "memoryview", "str"],
)
def test_decode_accepts_bytes_and_text(convert: Callable[[bytes], Any]) -> None:
    event = _trade_event()
    decoded = decode_event(convert(encode_event(event)))
    assert decoded.as_tuple() == event.as_tuple()


def test_decoded_event_is_a_fresh_event_not_lent_by_a_pool() -> None:
    decoded = decode_event(encode_event(_trade_event()))
    assert type(decoded) is Event
    assert not hasattr(decoded, "_pool")


def test_decoded_decimals_keep_the_text_the_venue_wrote() -> None:
    document = _document()
    document["payload"]["price"] = "0.00123400"
    decoded = decode_event(orjson.dumps(document))
    assert isinstance(decoded.payload, Trade)
    assert decoded.payload.price == "0.00123400"


def test_omitted_optional_payload_fields_take_their_defaults() -> None:
    document = _document(Kind.BOOK_STATUS)
    del document["payload"]["last_seq"]
    decoded = decode_event(orjson.dumps(document))
    assert decoded.payload == BookStatus(state=BookState.LIVE, reason=None, last_seq=None)


# -- rejection -----------------------------------------------------------------


def test_decode_error_is_a_value_error_and_a_meltica_error() -> None:
    error = _decode_error([])
    assert isinstance(error, ValueError)
    assert isinstance(error, MelticaError)


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b'{"kind": "trade"', "\ud800", b"\xff", b"NaN", b"[1e400]"]
)
def test_invalid_json_is_rejected(raw: bytes | str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_event(raw)
    assert "malformed JSON" in info.value.reason
    assert info.value.path == ""


@pytest.mark.parametrize("document", [[], "trade", None, 1, 1.5, True])
def test_top_level_that_is_not_an_object_is_rejected(document: object) -> None:
    error = _decode_error(document)
    assert "JSON object" in error.reason
    assert error.path == ""


@pytest.mark.parametrize("kind", ["trades", "TRADE", "", None, 1, ["trade"], {}])
def test_unknown_kind_is_rejected(kind: object) -> None:
    document = _document()
    document["kind"] = kind
    error = _decode_error(document)
    assert error.path == "kind"
    assert "unknown Kind" in error.reason
    assert repr(kind) in error.reason


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 0, None, str(SCHEMA_VERSION)])
def test_other_schema_versions_are_rejected(version: object) -> None:
    document = _document()
    document["schema_version"] = version
    error = _decode_error(document)
    assert error.path == "schema_version"
    assert "not supported" in error.reason


@pytest.mark.parametrize("version", [float(SCHEMA_VERSION), SCHEMA_VERSION == 1])
def test_schema_version_that_only_compares_equal_is_rejected(version: object) -> None:
    document = _document()
    document["schema_version"] = version
    error = _decode_error(document)
    assert error.path == "schema_version"
    assert "expected int" in error.reason


@pytest.mark.parametrize("name", [field.name for field in attrs.fields(Event)])
def test_each_missing_envelope_field_is_rejected_by_name(name: str) -> None:
    document = _document()
    del document[name]
    error = _decode_error(document)
    assert error.path == name or (error.path == "" and f"missing field(s) {name}" in error.reason)


def test_unexpected_envelope_field_is_rejected_by_name() -> None:
    document = _document()
    document["venue"] = "binance"
    error = _decode_error(document)
    assert error.path == ""
    assert "unexpected field(s) venue" in error.reason


def test_unexpected_payload_field_is_rejected_by_path() -> None:
    document = _document()
    document["payload"]["fee"] = "0.1"
    error = _decode_error(document)
    assert error.path == "payload"
    assert "unexpected field(s) fee" in error.reason


def test_missing_payload_field_is_rejected_by_path() -> None:
    document = _document()
    del document["payload"]["side"]
    error = _decode_error(document)
    assert error.path == "payload"
    assert "missing field(s) side" in error.reason


@pytest.mark.parametrize("value", [57000.1, 57000, None, True, ["57000.1"]])
def test_price_that_is_not_a_string_is_rejected(value: object) -> None:
    document = _document()
    document["payload"]["price"] = value
    error = _decode_error(document)
    assert error.path == "payload.price"
    assert "expected a decimal string" in error.reason


@pytest.mark.parametrize(
    "text",
    [
        "1,5",
        "NaN",
        "nan",
        "Infinity",
        "-inf",
        "",
        ".",
        "-",
        " 1",
        "1 ",
        "1\n",
        "0x10",
        "1e",
        "1e+",
        "--1",
        "1_000",
        "1.2.3",
        "\u0661\u0662",  # Arabic-Indic digits one, two
        "\uff11",  # fullwidth digit one
    ],
)
def test_price_that_is_not_an_exact_decimal_is_rejected(text: str) -> None:
    document = _document()
    document["payload"]["price"] = text
    error = _decode_error(document)
    assert error.path == "payload.price"
    assert "not an exact decimal" in error.reason


@pytest.mark.parametrize("text", ["0", "-3", "57000.1", "0.00123400", "1e-8", "2E+3", "5.", ".5"])
def test_price_in_any_exact_decimal_spelling_is_accepted(text: str) -> None:
    document = _document()
    document["payload"]["price"] = text
    decoded = decode_event(orjson.dumps(document))
    assert isinstance(decoded.payload, Trade)
    assert decoded.payload.price == text


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d.__setitem__("event_id", True), "event_id"),
        (lambda d: d.__setitem__("seq", False), "seq"),
        (lambda d: d["payload"].__setitem__("trade_ts", True), "payload.trade_ts"),
    ],
    ids=["event_id", "seq", "trade_ts"],
)
def test_boolean_where_an_int_is_required_is_rejected(mutate: Mutation, path: str) -> None:
    document = _document()
    mutate(document)
    error = _decode_error(document)
    assert error.path == path
    assert "expected int, got boolean" in error.reason


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("event_id", "7", "expected int, got string"),
        ("event_id", 7.0, "expected int, got number"),
        ("ingest_ts", None, "expected int, got null"),
        ("provider", 1, "expected str, got number"),
        ("trace_id", [], "expected str, got array"),
    ],
)
def test_envelope_field_of_the_wrong_type_is_rejected(name: str, value: Any, reason: str) -> None:
    document = _document()
    document[name] = value
    error = _decode_error(document)
    assert error.path == name
    assert reason in error.reason


def test_integer_beyond_64_bits_is_rejected() -> None:
    # orjson reads such a number as a float, which no int field accepts.
    raw = encode_event(_trade_event()).replace(b'"event_id":7', b'"event_id":%d' % 2**64)
    with pytest.raises(DecodeError) as info:
        decode_event(raw)
    assert info.value.path == "event_id"
    assert "expected int, got number" in info.value.reason


@pytest.mark.parametrize("side", ["BUY", "bid", "", None, 1])
def test_unknown_side_is_rejected(side: object) -> None:
    document = _document()
    document["payload"]["side"] = side
    error = _decode_error(document)
    assert error.path == "payload.side"
    assert "unknown Side" in error.reason


@pytest.mark.parametrize(
    ("kind", "state", "enum_name"),
    [(Kind.EXEC_REPORT, "done", "OrderState"), (Kind.BOOK_STATUS, "dead", "BookState")],
)
def test_unknown_state_is_rejected(kind: Kind, state: str, enum_name: str) -> None:
    document = _document(kind)
    document["payload"]["state"] = state
    error = _decode_error(document)
    assert error.path == "payload.state"
    assert f"unknown {enum_name} {state!r}" in error.reason


@pytest.mark.parametrize(
    "level", [["1"], ["1", "2", "3"], [], "1,2", {"price": "1", "size": "2"}, None]
)
def test_book_level_that_is_not_a_pair_is_rejected(level: object) -> None:
    document = _document(Kind.BOOK_SNAPSHOT)
    document["payload"]["bids"].append(level)
    error = _decode_error(document)
    assert error.path == "payload.bids[1]"
    assert "expected an array of 2" in error.reason


def test_bad_value_inside_a_level_is_rejected_by_its_index() -> None:
    document = _document(Kind.BOOK_SNAPSHOT)
    document["payload"]["asks"][0][1] = "half"
    error = _decode_error(document)
    assert error.path == "payload.asks[0][1]"


def test_bad_level_of_a_merged_venue_is_rejected_by_its_path() -> None:
    document = _document(Kind.MERGED)
    document["payload"]["venues"][0]["bid"] = ["1"]
    error = _decode_error(document)
    assert error.path == "payload.venues[0].bid"


def test_book_side_that_is_not_an_array_is_rejected() -> None:
    document = _document(Kind.BOOK_SNAPSHOT)
    document["payload"]["asks"] = {"101": "0.5"}
    error = _decode_error(document)
    assert error.path == "payload.asks"
    assert "expected an array, got object" in error.reason


@pytest.mark.parametrize(
    ("kind", "shape_of"), [(Kind.TRADE, Kind.TICKER), (Kind.TICKER, Kind.TRADE)]
)
def test_payload_shaped_for_another_kind_is_rejected(kind: Kind, shape_of: Kind) -> None:
    document = _document(shape_of)
    document["kind"] = kind.value
    error = _decode_error(document)
    assert error.path == "payload"
    assert "unexpected field(s)" in error.reason


@pytest.mark.parametrize(
    ("payload", "json_type"), [(None, "null"), ([], "array"), ("trade", "string"), (1, "number")]
)
def test_payload_that_is_not_an_object_is_rejected(payload: object, json_type: str) -> None:
    document = _document()
    document["payload"] = payload
    error = _decode_error(document)
    assert error.path == "payload"
    assert f"expected an object, got {json_type}" in error.reason


# -- any mutation of a valid document ------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _slots(value: object) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in a parsed JSON document, depth first."""
    slots: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        items = []
    for key, child in items:
        slots.append((value, key))
        slots.extend(_slots(child))
    return slots


@given(event=events(), data=st.data())
def test_mutated_document_decodes_to_a_complete_event_or_raises_decode_error(
    event: Event, data: st.DataObject
) -> None:
    document = orjson.loads(encode_event(event))
    slots = _slots(document)
    # Half the time stay in the envelope, which a deep payload would otherwise crowd out.
    if data.draw(st.booleans(), label="envelope only"):
        slots = [(container, key) for container, key in slots if container is document]
    droppable = [(container, key) for container, key in slots if isinstance(container, dict)]
    leaves = [(c, k) for c, k in slots if not isinstance(c[k], dict | list)]
    if data.draw(st.booleans(), label="drop a key"):
        container, key = data.draw(st.sampled_from(droppable), label="slot")
        del container[key]
    else:
        container, key = data.draw(st.sampled_from(leaves), label="slot")
        old = container[key]
        container[key] = data.draw(
            json_values.filter(lambda new: _json_type(new) != _json_type(old)), label="new"
        )
    try:
        decoded = decode_event(orjson.dumps(document))
    except DecodeError:
        return
    assert type(decoded.payload) is PAYLOAD_TYPE[decoded.kind]
    assert decode_event(encode_event(decoded)).as_tuple() == decoded.as_tuple()


# -- encoding ------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Kind))
def test_encoding_an_event_without_payload_raises_value_error(kind: Kind) -> None:
    with pytest.raises(ValueError, match=f"needs a {PAYLOAD_TYPE[kind].__name__} payload"):
        encode_event(Event(kind=kind))


@pytest.mark.parametrize("kind", list(Kind))
@given(data=st.data())
def test_encoding_a_payload_of_another_kind_raises_value_error(
    kind: Kind, data: st.DataObject
) -> None:
    other = data.draw(
        st.sampled_from([k for k in Kind if PAYLOAD_TYPE[k] is not PAYLOAD_TYPE[kind]])
    )
    payload = data.draw(payloads(other))
    with pytest.raises(ValueError, match=f"not {type(payload).__name__}"):
        encode_event(Event(kind=kind, payload=payload))


# -- the schema itself ---------------------------------------------------------


@pytest.mark.parametrize("hint", [float, int | str, list[str], dict[str, str], Decimal])
def test_codec_refuses_a_field_type_it_cannot_check(hint: object) -> None:
    # A payload field of such a type must fail at import, not pass unchecked at decode.
    with pytest.raises(TypeError):
        _check_for(hint)


def test_annotations_other_than_exact_decimal_keep_the_base_type_check() -> None:
    check = _check_for(Annotated[int, "ns"])
    assert check(5, "x") == 5
    with pytest.raises(DecodeError):
        check("5", "x")
