"""OKX v5 public frames to canonical records; malformed frames raise DecodeError only."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meltica_trio import DecodeError
from meltica_trio.events import Kind, Side, Ticker, Trade
from meltica_trio.providers import ControlFrame, DepthDiff, DepthSnapshot, Parsed, VenueMessage
from meltica_trio.providers.okx import parse_frame, parse_message

# Frames as recorded in tests/providers/data/okx-capture.jsonl (the snapshot cut short).
TICKER: dict[str, Any] = {
    "arg": {"channel": "tickers", "instId": "UNI-USD-SWAP"},
    "data": [
        {
            "instType": "SWAP",
            "instId": "UNI-USD-SWAP",
            "last": "5.123",
            "lastSz": "100",
            "askPx": "5.142",
            "askSz": "25",
            "bidPx": "5.134",
            "bidSz": "96",
            "ts": "1652459223143",
        }
    ],
}
TRADE: dict[str, Any] = {
    "arg": {"channel": "trades", "instId": "UNI-USD-SWAP"},
    "data": [
        {
            "instId": "UNI-USD-SWAP",
            "tradeId": "12883020",
            "px": "5.123",
            "sz": "100",
            "side": "sell",
            "ts": "1652459215150",
        }
    ],
}
SNAPSHOT: dict[str, Any] = {
    "arg": {"channel": "books", "instId": "UNI-USD-SWAP"},
    "action": "snapshot",
    "data": [
        {
            "asks": [["5.148", "60", "0", "1"], ["5.149", "192", "0", "1"]],
            "bids": [["5.14", "251", "0", "2"], ["5.139", "25", "0", "1"]],
            "ts": "1652459225363",
            "checksum": 555605283,
        }
    ],
}
UPDATE: dict[str, Any] = {
    "arg": {"channel": "books", "instId": "UNI-USD-SWAP"},
    "action": "update",
    "data": [
        {
            "asks": [["5.158", "129", "0", "2"]],
            "bids": [["5.14", "427", "0", "4"], ["5.117", "0", "0", "0"]],
            "ts": "1652459225464",
            "checksum": 1361161687,
            "prevSeqId": 123456,
            "seqId": 123457,
        }
    ],
}
MS = 1_000_000


def only(frame: object) -> object:
    (message,) = parse_frame(frame)
    return message


def test_books_snapshot_becomes_depth_snapshot_with_levels_as_sent() -> None:
    assert only(SNAPSHOT) == DepthSnapshot(
        instrument="UNI-USD-SWAP",
        seq=None,
        bids=(("5.14", "251"), ("5.139", "25")),
        asks=(("5.148", "60"), ("5.149", "192")),
        checksum=555605283,
        venue_ts_ns=1652459225363 * MS,
    )


def test_books_update_becomes_diff_with_sequence_ids() -> None:
    assert only(UPDATE) == DepthDiff(
        instrument="UNI-USD-SWAP",
        first_seq=123457,
        last_seq=123457,
        prev_seq=123456,
        bids=(("5.14", "427"), ("5.117", "0")),
        asks=(("5.158", "129"),),
        checksum=1361161687,
        venue_ts_ns=1652459225464 * MS,
    )


def test_trade_side_is_the_takers_side() -> None:
    assert only(TRADE) == Parsed(
        Kind.TRADE,
        "UNI-USD-SWAP",
        12883020,
        Trade(
            price="5.123",
            size="100",
            side=Side.SELL,
            trade_id="12883020",
            trade_ts=1652459215150 * MS,
        ),
        1652459215150 * MS,
    )


def test_ticker_keeps_last_price() -> None:
    assert only(TICKER) == Parsed(
        Kind.TICKER,
        "UNI-USD-SWAP",
        None,
        Ticker(
            bid_price="5.134", bid_size="96", ask_price="5.142", ask_size="25", last_price="5.123"
        ),
        1652459223143 * MS,
    )


def test_ticker_with_empty_last_has_no_last_price() -> None:
    frame = copy.deepcopy(TICKER)
    frame["data"][0]["last"] = ""
    message = only(frame)
    assert isinstance(message, Parsed)
    assert isinstance(message.payload, Ticker)
    assert message.payload.last_price is None


def test_one_frame_may_carry_several_items() -> None:
    frame = copy.deepcopy(TRADE)
    frame["data"].append(dict(frame["data"][0], tradeId="12883021", side="buy"))
    messages = parse_frame(frame)
    assert [m.seq for m in messages if isinstance(m, Parsed)] == [12883020, 12883021]


def test_non_numeric_trade_id_has_no_sequence() -> None:
    frame = copy.deepcopy(TRADE)
    frame["data"][0]["tradeId"] = "t-1"
    message = only(frame)
    assert isinstance(message, Parsed)
    assert message.seq is None


def test_subscribe_ack_is_a_control_frame() -> None:
    ack = {"event": "subscribe", "arg": {"channel": "books", "instId": "BTC-USDT"}}
    assert only(ack) == ControlFrame(event="subscribe", channel="books", instrument="BTC-USDT")


def test_error_event_is_a_control_frame_marked_as_error() -> None:
    frame = {"event": "error", "code": "60012", "msg": "Invalid request", "connId": "a4d3ae55"}
    error = only(frame)
    assert error == ControlFrame(event="error", code="60012", message="Invalid request")
    assert isinstance(error, ControlFrame)
    assert error.is_error


@pytest.mark.parametrize("raw", ["pong", b"pong"])
def test_pong_text_is_a_control_frame(raw: str | bytes) -> None:
    assert parse_message(raw) == [ControlFrame(event="pong")]


def test_parse_message_decodes_json() -> None:
    assert parse_message(orjson.dumps(UPDATE)) == parse_frame(UPDATE)


@pytest.mark.parametrize(
    ("frame", "edit", "path"),
    [
        (UPDATE, lambda d: d["arg"].update(channel="books5"), "arg.channel"),
        (UPDATE, lambda d: d["arg"].pop("instId"), "arg.instId"),
        (UPDATE, lambda d: d.update(action="partial"), "action"),
        (UPDATE, lambda d: d.pop("action"), "action"),
        (UPDATE, lambda d: d.update(data={}), "data"),
        (UPDATE, lambda d: d["data"][0].update(checksum="1361161687"), "data[0].checksum"),
        (UPDATE, lambda d: d["data"][0].update(seqId=1.5), "data[0].seqId"),
        (UPDATE, lambda d: d["data"][0].update(ts=1652459225464), "data[0].ts"),
        (UPDATE, lambda d: d["data"][0]["asks"].append(["5.2"]), "data[0].asks[1]"),
        (UPDATE, lambda d: d["data"][0]["bids"].append([5.2, "1"]), "data[0].bids[2]"),
        (UPDATE, lambda d: d["data"][0].pop("bids"), "data[0].bids"),
        (TRADE, lambda d: d["data"][0].update(side="short"), "data[0].side"),
        (TRADE, lambda d: d["data"][0].update(px="5,123"), "data[0].px"),
        (TICKER, lambda d: d["data"][0].update(bidPx=""), "data[0].bidPx"),
        (TICKER, lambda d: d.update(data=["x"]), "data[0]"),
        ({"event": 3}, lambda d: None, "event"),
        ({"event": "subscribe", "arg": []}, lambda d: None, "arg"),
    ],
)
def test_malformed_frames_raise_decode_error_at_path(
    frame: dict[str, Any], edit: Any, path: str
) -> None:
    broken = copy.deepcopy(frame)
    edit(broken)
    with pytest.raises(DecodeError) as info:
        parse_frame(broken)
    assert info.value.path == path


@pytest.mark.parametrize("raw", [b"", b"ping", b"{]", b"\x80"])
def test_non_json_message_raises_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError, match="not JSON"):
        parse_message(raw)


def parses_or_refuses(parse: Callable[[], list[VenueMessage]]) -> None:
    """Either records come out or a DecodeError with a reason; nothing else escapes."""
    try:
        messages = parse()
    except DecodeError as exc:
        error: DecodeError | None = exc
    else:
        error = None
    if error is not None:
        assert error.reason
        return
    assert all(isinstance(m, Parsed | DepthDiff | DepthSnapshot | ControlFrame) for m in messages)


# -- properties -----------------------------------------------------------------

decimals = st.from_regex(r"[0-9]{1,9}(\.[0-9]{1,8})?", fullmatch=True)
okx_levels = st.lists(
    st.tuples(decimals, decimals, st.just("0"), st.integers(0, 99).map(str)), max_size=6
)
seq_ids = st.integers(min_value=-1, max_value=2**62)
checksums = st.integers(min_value=-(2**31), max_value=2**31 - 1)
instruments = st.sampled_from(["BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP"])


@given(
    instruments,
    st.sampled_from(["snapshot", "update"]),
    okx_levels,
    okx_levels,
    seq_ids,
    seq_ids,
    checksums,
)
def test_random_book_frames_round_trip_exactly(
    instrument: str,
    action: str,
    bids: Any,
    asks: Any,
    prev: int,
    seq: int,
    checksum: int,
) -> None:
    item = {
        "asks": [list(level) for level in asks],
        "bids": [list(level) for level in bids],
        "ts": "1652459225464",
        "checksum": checksum,
        "prevSeqId": prev,
        "seqId": seq,
    }
    frame = {"arg": {"channel": "books", "instId": instrument}, "action": action, "data": [item]}
    message = only(orjson.loads(orjson.dumps(frame)))
    assert isinstance(message, DepthSnapshot | DepthDiff)
    assert message.instrument == instrument
    assert message.bids == tuple(level[:2] for level in bids)
    assert message.asks == tuple(level[:2] for level in asks)
    assert message.checksum == checksum
    if isinstance(message, DepthDiff):
        assert (message.prev_seq, message.last_seq) == (prev, seq)
    else:
        assert message.seq == seq


@given(decimals, decimals, st.sampled_from(["buy", "sell"]), st.integers(0, 2**62))
def test_random_trades_round_trip_exactly(px: str, sz: str, side: str, trade_id: int) -> None:
    item = {"instId": "BTC-USDT", "tradeId": str(trade_id), "px": px, "sz": sz, "side": side}
    message = only(
        {"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [dict(item, ts="1")]}
    )
    assert isinstance(message, Parsed)
    assert message.payload == Trade(
        price=px, size=sz, side=Side(side), trade_id=str(trade_id), trade_ts=MS
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(["arg", "action", "data", "event", "channel", "instId", "code", "msg"])


@given(json_values | st.dictionaries(keys, json_values))
def test_junk_frames_raise_decode_error_and_nothing_else(frame: object) -> None:
    parses_or_refuses(lambda: parse_frame(frame))


@given(st.binary(max_size=64))
def test_junk_bytes_raise_decode_error_and_nothing_else(raw: bytes) -> None:
    parses_or_refuses(lambda: parse_message(raw))


@given(st.sampled_from([SNAPSHOT, UPDATE, TRADE, TICKER]), st.data(), json_values)
def test_valid_frames_with_one_field_replaced_parse_or_raise_decode_error(
    frame: dict[str, Any], data: st.DataObject, junk: object
) -> None:
    mutated = copy.deepcopy(frame)
    target = data.draw(st.sampled_from([mutated, mutated["arg"], mutated["data"][0]]))
    target[data.draw(st.sampled_from(sorted(target)))] = junk
    parses_or_refuses(lambda: parse_frame(mutated))
