"""Binance spot market data, venue JSON to canonical records (sync, no I/O).

Frames from a combined-stream connection (``/stream?streams=...``) are
``{"stream": "nknusdt@depth@100ms", "data": {...}}``; frames from a raw stream
(``/ws/<stream>``) are the ``data`` part alone. Both are accepted::

    depthUpdate   e, E, s, U (first update id), u (final update id), b, a  -> DepthDiff
    aggTrade      e, E, s, a (agg trade id), p, q, T (trade time), m       -> Parsed(TRADE)
    trade         e, E, s, t (trade id), p, q, T, m                        -> Parsed(TRADE)
    bookTicker    u, s, b, B, a, A (no ``e``: told by the stream name)     -> Parsed(TICKER)
    kline         e, E, s, k{t, T, i, o, h, l, c, v, x}                    -> Parsed(KLINE)
    REST depth    lastUpdateId, bids, asks (GET /api/v3/depth)            -> DepthSnapshot

``m`` is "the buyer is the market maker": then the seller crossed the spread, so the
aggressor side is ``Side.SELL``; otherwise ``Side.BUY``. Times are milliseconds on
the wire and nanoseconds in the records. Responses to requests sent on the socket
(``{"result": null, "id": 1}``, ``{"error": {...}, "id": 1}``) parse to a
:class:`~meltica_trio.providers.ControlFrame`. Anything else, and any field missing or
of the wrong type, raises :class:`~meltica_trio.DecodeError` with the field's path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import orjson

from meltica_trio._errors import DecodeError
from meltica_trio.events import Kind, Kline, Side, Ticker, Trade
from meltica_trio.providers import _fields as f
from meltica_trio.providers._parsed import (
    ControlFrame,
    DepthDiff,
    DepthSnapshot,
    Parsed,
    VenueMessage,
)

from ._symbols import SymbolMap

DEFAULT_SYMBOLS: Final = SymbolMap()
"""The suffix rule alone, for callers that have no exchangeInfo table."""

_BOOK_TICKER_KEYS: Final = frozenset("usbBaA")
_Handler = Callable[[f.JsonObject, str, SymbolMap], VenueMessage]


def parse_message(raw: str | bytes, symbols: SymbolMap = DEFAULT_SYMBOLS) -> list[VenueMessage]:
    """Decode one WebSocket message and parse it with :func:`parse_frame`.

    Raises:
        DecodeError: not JSON, or not a frame this parser knows.
    """
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from exc
    return parse_frame(frame, symbols)


def parse_frame(frame: object, symbols: SymbolMap = DEFAULT_SYMBOLS) -> list[VenueMessage]:
    """Parse one decoded frame into the records it carries (always exactly one).

    Args:
        frame: the decoded JSON of one WebSocket message.
        symbols: maps venue symbols to canonical instruments.

    Raises:
        DecodeError: an unknown event, or a field missing or malformed.
    """
    doc = f.obj(frame, "")
    if "stream" in doc:
        stream = f.text(doc, "stream", "")
        data = f.obj(f.get(doc, "data", ""), "data")
        return [_parse_event(data, stream, symbols, "data")]
    if "id" in doc and ("result" in doc or "error" in doc):
        return [_response(doc)]
    return [_parse_event(doc, "", symbols, "")]


def parse_depth_snapshot(
    body: object, symbol: str, symbols: SymbolMap = DEFAULT_SYMBOLS
) -> DepthSnapshot:
    """Parse a ``GET /api/v3/depth?symbol=...`` response body.

    Args:
        body: the decoded JSON body.
        symbol: the ``symbol`` query parameter of the request (the body lacks it).
        symbols: maps venue symbols to canonical instruments.

    Raises:
        DecodeError: the body is an error (``{"code": ..., "msg": ...}``) or malformed.
    """
    doc = f.obj(body, "")
    if "lastUpdateId" not in doc and "msg" in doc:
        raise DecodeError(f"depth snapshot refused: {doc.get('code')} {doc['msg']!r:.80}")
    return DepthSnapshot(
        instrument=symbols.to_canonical(symbol, "symbol"),
        seq=f.integer(doc, "lastUpdateId", ""),
        bids=f.levels(f.get(doc, "bids", ""), "bids"),
        asks=f.levels(f.get(doc, "asks", ""), "asks"),
    )


def _parse_event(data: f.JsonObject, stream: str, symbols: SymbolMap, path: str) -> VenueMessage:
    event = data.get("e")
    if event is None:
        # bookTicker is the one stream without an event type.
        if stream.endswith("@bookTicker") or (not stream and data.keys() >= _BOOK_TICKER_KEYS):
            return _book_ticker(data, path, symbols)
        raise DecodeError(f"frame without an event type on stream {stream!r:.60}", path)
    handler = _HANDLERS.get(event) if type(event) is str else None
    if handler is None:
        raise DecodeError(f"unknown event type {event!r:.40}", f.join(path, "e"))
    return handler(data, path, symbols)


def _instrument(data: f.JsonObject, path: str, symbols: SymbolMap) -> str:
    return symbols.to_canonical(f.text(data, "s", path), f.join(path, "s"))


def _depth_update(data: f.JsonObject, path: str, symbols: SymbolMap) -> DepthDiff:
    first = f.integer(data, "U", path)
    last = f.integer(data, "u", path)
    if first > last:
        raise DecodeError(f"first update id {first} after final update id {last}", path)
    return DepthDiff(
        instrument=_instrument(data, path, symbols),
        first_seq=first,
        last_seq=last,
        prev_seq=f.optional_integer(data, "pu", path),
        bids=f.levels(f.get(data, "b", path), f.join(path, "b")),
        asks=f.levels(f.get(data, "a", path), f.join(path, "a")),
        venue_ts_ns=f.integer(data, "E", path) * f.NS_PER_MS,
    )


def _trade(data: f.JsonObject, path: str, symbols: SymbolMap, id_key: str) -> Parsed:
    trade_id = f.integer(data, id_key, path)
    payload = Trade(
        price=f.decimal(data, "p", path),
        size=f.decimal(data, "q", path),
        side=Side.SELL if f.boolean(data, "m", path) else Side.BUY,
        trade_id=str(trade_id),
        trade_ts=f.integer(data, "T", path) * f.NS_PER_MS,
    )
    venue_ts = f.integer(data, "E", path) * f.NS_PER_MS
    return Parsed(Kind.TRADE, _instrument(data, path, symbols), trade_id, payload, venue_ts)


def _agg_trade(data: f.JsonObject, path: str, symbols: SymbolMap) -> Parsed:
    return _trade(data, path, symbols, "a")


def _raw_trade(data: f.JsonObject, path: str, symbols: SymbolMap) -> Parsed:
    return _trade(data, path, symbols, "t")


def _book_ticker(data: f.JsonObject, path: str, symbols: SymbolMap) -> Parsed:
    payload = Ticker(
        bid_price=f.decimal(data, "b", path),
        bid_size=f.decimal(data, "B", path),
        ask_price=f.decimal(data, "a", path),
        ask_size=f.decimal(data, "A", path),
    )
    seq = f.integer(data, "u", path)
    return Parsed(Kind.TICKER, _instrument(data, path, symbols), seq, payload, None)


def _kline(data: f.JsonObject, path: str, symbols: SymbolMap) -> Parsed:
    kpath = f.join(path, "k")
    k = f.obj(f.get(data, "k", path), kpath)
    payload = Kline(
        interval=f.text(k, "i", kpath),
        open_ts=f.integer(k, "t", kpath) * f.NS_PER_MS,
        close_ts=f.integer(k, "T", kpath) * f.NS_PER_MS,
        open=f.decimal(k, "o", kpath),
        high=f.decimal(k, "h", kpath),
        low=f.decimal(k, "l", kpath),
        close=f.decimal(k, "c", kpath),
        volume=f.decimal(k, "v", kpath),
        closed=f.boolean(k, "x", kpath),
    )
    venue_ts = f.integer(data, "E", path) * f.NS_PER_MS
    return Parsed(Kind.KLINE, _instrument(data, path, symbols), None, payload, venue_ts)


def _response(doc: f.JsonObject) -> ControlFrame:
    error = doc.get("error")
    if error is None:
        return ControlFrame(event="result")
    err = f.obj(error, "error")
    code = err.get("code")
    return ControlFrame(
        event="error",
        code=None if code is None else str(code),
        message=f.optional_text(err, "msg", "error"),
    )


_HANDLERS: Final[dict[str, _Handler]] = {
    "depthUpdate": _depth_update,
    "aggTrade": _agg_trade,
    "trade": _raw_trade,
    "kline": _kline,
}
