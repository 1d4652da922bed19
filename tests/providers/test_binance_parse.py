"""Binance spot frames to canonical records; malformed frames raise DecodeError only."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meltica_trio import DecodeError
from meltica_trio.events import Kind, Kline, Side, Ticker, Trade
from meltica_trio.providers import ControlFrame, DepthDiff, DepthSnapshot, Parsed, VenueMessage
from meltica_trio.providers.binance import (
    SymbolMap,
    parse_depth_snapshot,
    parse_frame,
    parse_message,
)

# Frames exactly as recorded in tests/providers/data/binance-spot-capture.jsonl.
DEPTH: dict[str, Any] = {
    "stream": "nknusdt@depth@100ms",
    "data": {
        "e": "depthUpdate",
        "E": 1633998512068,
        "s": "NKNUSDT",
        "U": 499869750,
        "u": 499869752,
        "b": [["0.35130000", "6195.00000000"], ["0.34750000", "5548.00000000"]],
        "a": [],
    },
}
AGG_TRADE: dict[str, Any] = {
    "stream": "nknusdt@aggTrade",
    "data": {
        "e": "aggTrade",
        "E": 1633998523963,
        "s": "NKNUSDT",
        "a": 15683430,
        "p": "0.35280000",
        "q": "58.00000000",
        "f": 19862790,
        "l": 19862790,
        "T": 1633998523963,
        "m": False,
        "M": True,
    },
}
BOOK_TICKER: dict[str, Any] = {
    "stream": "nknusdt@bookTicker",
    "data": {
        "u": 499869768,
        "s": "NKNUSDT",
        "b": "0.35210000",
        "B": "672.00000000",
        "a": "0.35260000",
        "A": "3199.00000000",
    },
}
KLINE: dict[str, Any] = {
    "stream": "lrcbtc@kline_1m",
    "data": {
        "e": "kline",
        "E": 1633998534486,
        "s": "LRCBTC",
        "k": {
            "t": 1633998480000,
            "T": 1633998539999,
            "s": "LRCBTC",
            "i": "1m",
            "o": "0.00000638",
            "c": "0.00000638",
            "h": "0.00000638",
            "l": "0.00000638",
            "v": "177.00000000",
            "n": 1,
            "x": False,
        },
    },
}
MS = 1_000_000


def only(frame: object) -> object:
    (message,) = parse_frame(frame)
    return message


def test_depth_update_becomes_diff_with_levels_as_sent() -> None:
    assert only(DEPTH) == DepthDiff(
        instrument="NKN-USDT",
        first_seq=499869750,
        last_seq=499869752,
        prev_seq=None,
        bids=(("0.35130000", "6195.00000000"), ("0.34750000", "5548.00000000")),
        asks=(),
        venue_ts_ns=1633998512068 * MS,
    )


@pytest.mark.parametrize(("buyer_is_maker", "side"), [(False, Side.BUY), (True, Side.SELL)])
def test_agg_trade_side_is_the_aggressor(buyer_is_maker: bool, side: Side) -> None:
    frame = copy.deepcopy(AGG_TRADE)
    frame["data"]["m"] = buyer_is_maker
    assert only(frame) == Parsed(
        Kind.TRADE,
        "NKN-USDT",
        15683430,
        Trade(
            price="0.35280000",
            size="58.00000000",
            side=side,
            trade_id="15683430",
            trade_ts=1633998523963 * MS,
        ),
        1633998523963 * MS,
    )


def test_trade_maker_flag_must_be_a_boolean() -> None:
    frame = copy.deepcopy(AGG_TRADE)
    frame["data"]["m"] = "false"
    with pytest.raises(DecodeError, match="expected a boolean") as info:
        parse_frame(frame)
    assert info.value.path == "data.m"


def test_raw_trade_event_uses_trade_id() -> None:
    data = dict(AGG_TRADE["data"], e="trade", t=77)
    del data["a"]
    message = only(data)
    assert isinstance(message, Parsed)
    assert message.seq == 77
    assert isinstance(message.payload, Trade)
    assert message.payload.trade_id == "77"


def test_book_ticker_is_recognised_by_stream_name() -> None:
    assert only(BOOK_TICKER) == Parsed(
        Kind.TICKER,
        "NKN-USDT",
        499869768,
        Ticker(
            bid_price="0.35210000",
            bid_size="672.00000000",
            ask_price="0.35260000",
            ask_size="3199.00000000",
        ),
        None,
    )


def test_book_ticker_on_a_raw_stream_is_recognised_by_its_fields() -> None:
    assert only(BOOK_TICKER["data"]) == only(BOOK_TICKER)


def test_frame_without_event_type_on_other_stream_is_refused() -> None:
    frame = {"stream": "nknusdt@depth@100ms", "data": BOOK_TICKER["data"]}
    with pytest.raises(DecodeError, match="without an event type"):
        parse_frame(frame)


def test_kline_times_are_nanoseconds_and_prices_strings() -> None:
    assert only(KLINE) == Parsed(
        Kind.KLINE,
        "LRC-BTC",
        None,
        Kline(
            interval="1m",
            open_ts=1633998480000 * MS,
            close_ts=1633998539999 * MS,
            open="0.00000638",
            high="0.00000638",
            low="0.00000638",
            close="0.00000638",
            volume="177.00000000",
            closed=False,
        ),
        1633998534486 * MS,
    )


def test_raw_stream_payload_parses_like_combined_frame() -> None:
    assert only(DEPTH["data"]) == only(DEPTH)


def test_parse_message_decodes_text_and_bytes() -> None:
    raw = orjson.dumps(DEPTH)
    assert parse_message(raw) == parse_message(raw.decode()) == parse_frame(DEPTH)


def test_rest_depth_snapshot_takes_symbol_from_request() -> None:
    body = {"lastUpdateId": 15602511, "bids": [["6.25100000", "69.30000000"]], "asks": []}
    assert parse_depth_snapshot(body, "RUNEEUR") == DepthSnapshot(
        instrument="RUNE-EUR", seq=15602511, bids=(("6.25100000", "69.30000000"),), asks=()
    )


def test_rest_error_body_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="Invalid symbol"):
        parse_depth_snapshot({"code": -1121, "msg": "Invalid symbol."}, "NOPEUSDT")


def test_subscribe_responses_are_control_frames() -> None:
    assert only({"result": None, "id": 1}) == ControlFrame(event="result")
    error = only({"error": {"code": 2, "msg": "Invalid request"}, "id": 1})
    assert error == ControlFrame(event="error", code="2", message="Invalid request")
    assert isinstance(error, ControlFrame)
    assert error.is_error


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d["data"].pop("U"), "data.U"),
        (lambda d: d["data"].update(U="499869750"), "data.U"),
        (lambda d: d["data"].update(U=True), "data.U"),
        (lambda d: d["data"].update(e="depthUpdateX"), "data.e"),
        (lambda d: d["data"].update(e=5), "data.e"),
        (lambda d: d["data"].update(b=[["0.35", 6195.0]]), "data.b[0]"),
        (lambda d: d["data"].update(b=[["0.35", "1,5"]]), "data.b[0]"),
        (lambda d: d["data"].update(b=[["-0.35", "1"]]), "data.b[0]"),
        (lambda d: d["data"].update(b=[["0.35", "1"], ["0.36\n1", "1"]]), "data.b[1]"),
        (lambda d: d["data"].update(b=[["0.35", "1"], "01"]), "data.b[1]"),
        (lambda d: d["data"].update(a={"0.35": "1"}), "data.a"),
        (lambda d: d["data"].update(s="NKN"), "data.s"),
        (lambda d: d.update(data=[]), "data"),
        (lambda d: d.update(stream=7), "stream"),
    ],
)
def test_malformed_depth_update_raises_decode_error_at_path(edit: Any, path: str) -> None:
    frame = copy.deepcopy(DEPTH)
    edit(frame)
    with pytest.raises(DecodeError) as info:
        parse_frame(frame)
    assert info.value.path == path


def test_first_update_id_after_final_is_refused() -> None:
    frame = copy.deepcopy(DEPTH)
    frame["data"]["U"] = frame["data"]["u"] + 1
    with pytest.raises(DecodeError, match="after final update id"):
        parse_frame(frame)


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe"])
def test_non_json_message_raises_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError, match="not JSON"):
        parse_message(raw)


@pytest.mark.parametrize("frame", [[], "x", 1, None, {}, {"e": "aggTrade"}])
def test_non_frames_raise_decode_error(frame: object) -> None:
    with pytest.raises(DecodeError):
        parse_frame(frame)


# -- symbols --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "instrument"),
    [
        ("NKNUSDT", "NKN-USDT"),
        ("nknusdt", "NKN-USDT"),
        ("BLZETH", "BLZ-ETH"),
        ("LRCBTC", "LRC-BTC"),
        ("RUNEEUR", "RUNE-EUR"),
        ("FDUSDUSDT", "FDUSD-USDT"),
        ("BNBFDUSD", "BNB-FDUSD"),
        ("USDTTRY", "USDT-TRY"),
        ("ETHTUSD", "ETH-TUSD"),
    ],
)
def test_symbol_splits_on_longest_known_quote(symbol: str, instrument: str) -> None:
    symbols = SymbolMap()
    assert symbols.to_canonical(symbol) == instrument
    assert symbols.to_venue(instrument) == symbol.upper()


def test_explicit_symbol_map_takes_precedence_both_ways() -> None:
    symbols = SymbolMap({"BTCSTUSDT": "BTCST-USDT", "WEIRDX": "WEIRD-X"})
    assert symbols.to_canonical("WEIRDX") == "WEIRD-X"
    assert symbols.to_venue("WEIRD-X") == "WEIRDX"
    assert symbols.to_canonical("NKNUSDT") == "NKN-USDT"


def test_symbol_map_from_exchange_info() -> None:
    info = {
        "symbols": [
            {"symbol": "ETHBTC", "baseAsset": "ETH", "quoteAsset": "BTC"},
            {"symbol": "XYZABC", "baseAsset": "XY", "quoteAsset": "ZABC"},
        ]
    }
    symbols = SymbolMap.from_exchange_info(info)
    assert symbols.to_canonical("XYZABC") == "XY-ZABC"
    assert symbols.to_venue("XY-ZABC") == "XYZABC"
    with pytest.raises(DecodeError) as info_error:
        SymbolMap.from_exchange_info({"symbols": [{"symbol": "ETHBTC"}]})
    assert info_error.value.path == "symbols[0].baseAsset"


@pytest.mark.parametrize("symbol", ["USDT", "XYZ", ""])
def test_unknown_quote_asset_raises_decode_error(symbol: str) -> None:
    with pytest.raises(DecodeError, match="unknown quote asset"):
        SymbolMap().to_canonical(symbol)


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
    assert len(messages) == 1
    assert all(isinstance(m, Parsed | DepthDiff | DepthSnapshot | ControlFrame) for m in messages)


# -- properties -----------------------------------------------------------------

decimals = st.from_regex(r"[0-9]{1,9}(\.[0-9]{1,8})?", fullmatch=True)
levels = st.lists(st.tuples(decimals, decimals), max_size=6)
ids = st.integers(min_value=0, max_value=2**62)
times = st.integers(min_value=0, max_value=2**41)
bases = st.from_regex(r"[A-Z]{2,6}", fullmatch=True)
quotes = st.sampled_from(["USDT", "BTC", "ETH", "EUR", "FDUSD"])


@given(bases, quotes, ids, st.integers(0, 50), levels, levels, times)
def test_random_depth_updates_round_trip_exactly(
    base: str, quote: str, first: int, extra: int, bids: Any, asks: Any, ts: int
) -> None:
    frame = {
        "stream": f"{base.lower()}{quote.lower()}@depth@100ms",
        "data": {
            "e": "depthUpdate",
            "E": ts,
            "s": base + quote,
            "U": first,
            "u": first + extra,
            "b": [list(level) for level in bids],
            "a": [list(level) for level in asks],
        },
    }
    diff = only(orjson.loads(orjson.dumps(frame)))
    assert isinstance(diff, DepthDiff)
    assert (diff.first_seq, diff.last_seq) == (first, first + extra)
    assert diff.bids == tuple(bids)
    assert diff.asks == tuple(asks)
    assert diff.venue_ts_ns == ts * MS


@given(decimals, decimals, decimals, decimals, ids, st.booleans(), times)
def test_random_trades_and_tickers_round_trip_exactly(
    p: str, q: str, b: str, a: str, trade_id: int, maker: bool, ts: int
) -> None:
    trade = {"e": "aggTrade", "E": ts, "s": "BTCUSDT", "a": trade_id, "p": p, "q": q}
    message = only(dict(trade, T=ts, m=maker))
    assert isinstance(message, Parsed)
    assert isinstance(message.payload, Trade)
    assert (message.payload.price, message.payload.size) == (p, q)
    assert message.payload.trade_id == str(trade_id)
    ticker = {"u": trade_id, "s": "BTCUSDT", "b": p, "B": q, "a": b, "A": a}
    message = only({"stream": "btcusdt@bookTicker", "data": ticker})
    assert isinstance(message, Parsed)
    assert message.payload == Ticker(bid_price=p, bid_size=q, ask_price=b, ask_size=a)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(["stream", "data", "e", "E", "s", "U", "u", "b", "a", "B", "A", "k"])
plausible = st.dictionaries(keys, json_values | st.sampled_from(["depthUpdate", "kline"]))


@given(json_values | plausible | st.builds(lambda d: {"stream": "x@y", "data": d}, plausible))
def test_junk_frames_raise_decode_error_and_nothing_else(frame: object) -> None:
    parses_or_refuses(lambda: parse_frame(frame))


@given(st.binary(max_size=64))
def test_junk_bytes_raise_decode_error_and_nothing_else(raw: bytes) -> None:
    parses_or_refuses(lambda: parse_message(raw))


@given(
    st.sampled_from([DEPTH, AGG_TRADE, BOOK_TICKER, KLINE]),
    st.data(),
    json_values,
)
def test_valid_frames_with_one_field_replaced_parse_or_raise_decode_error(
    frame: dict[str, Any], data: st.DataObject, junk: object
) -> None:
    mutated = copy.deepcopy(frame)
    target = mutated["data"]
    if "k" in target and data.draw(st.booleans()):
        target = target["k"]
    target[data.draw(st.sampled_from(sorted(target)))] = junk
    parses_or_refuses(lambda: parse_frame(mutated))
