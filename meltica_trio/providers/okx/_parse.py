"""OKX v5 public market data, venue JSON to canonical records (sync, no I/O).

Push frames are ``{"arg": {"channel", "instId"}, "action"?, "data": [...]}``; one
frame may carry several items, so parsing returns a list::

    books, books-l2-tbt, books50-l2-tbt
        action "snapshot" -> DepthSnapshot, action "update" -> DepthDiff; each item has
        asks/bids as [px, sz, liquidated, orders], ts (ms, string), checksum (signed
        CRC32), seqId and prevSeqId (absent in older captures).
    trades     tradeId, px, sz, side ("buy"/"sell", the taker's side), ts -> Parsed(TRADE)
    tickers    bidPx, bidSz, askPx, askSz, last, ts                      -> Parsed(TICKER)

``instId`` is the instrument as it is: spot ids are already canonical (``BTC-USDT``),
and futures and swaps (``BTC-USD-220527``, ``UNI-USD-SWAP``) keep their venue id.

Answers to requests are :class:`~meltica_trio.providers.ControlFrame` records:
``{"event": "subscribe" | "unsubscribe", "arg": {...}}`` and the text ``pong``; an
``{"event": "error", "code", "msg"}`` frame too, with ``is_error`` true, because it
is a well-formed answer that the I/O loop must act on, not a corrupt frame. Anything
else raises :class:`~meltica_trio.DecodeError` with the field's path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import orjson

from meltica_trio._errors import DecodeError
from meltica_trio.events import Kind, Side, Ticker, Trade
from meltica_trio.providers import _fields as f
from meltica_trio.providers._parsed import (
    ControlFrame,
    DepthDiff,
    DepthSnapshot,
    Parsed,
    VenueMessage,
)

_PONG: Final = ("pong", b"pong")
_SIDES: Final = {"buy": Side.BUY, "sell": Side.SELL}
_Item = Callable[[f.JsonObject, str, str, str | None], VenueMessage]


def parse_message(raw: str | bytes) -> list[VenueMessage]:
    """Decode one WebSocket message (JSON, or the text ``pong``) and parse it.

    Raises:
        DecodeError: not JSON, or not a frame this parser knows.
    """
    if raw in _PONG:
        return [ControlFrame(event="pong")]
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from exc
    return parse_frame(frame)


def parse_frame(frame: object) -> list[VenueMessage]:
    """Parse one decoded frame into the records it carries.

    Raises:
        DecodeError: an unknown channel or action, or a field missing or malformed.
    """
    doc = f.obj(frame, "")
    event = doc.get("event")
    if event is not None:
        return [_control(doc, event)]
    arg = f.obj(f.get(doc, "arg", ""), "arg")
    channel = f.text(arg, "channel", "arg")
    instrument = f.text(arg, "instId", "arg")
    handler = _CHANNELS.get(channel)
    if handler is None:
        raise DecodeError(f"unsupported channel {channel!r:.40}", "arg.channel")
    action = f.optional_text(doc, "action", "")
    items = f.array(f.get(doc, "data", ""), "data")
    return [
        handler(f.obj(item, f"data[{i}]"), f"data[{i}]", instrument, action)
        for i, item in enumerate(items)
    ]


def _control(doc: f.JsonObject, event: object) -> ControlFrame:
    if type(event) is not str:
        raise DecodeError(f"expected a string, got {event!r:.40}", "event")
    arg = doc.get("arg")
    channel = instrument = None
    if arg is not None:
        a = f.obj(arg, "arg")
        channel = f.optional_text(a, "channel", "arg")
        instrument = f.optional_text(a, "instId", "arg")
    code = doc.get("code")
    return ControlFrame(
        event=event,
        channel=channel,
        instrument=instrument,
        code=None if code is None else str(code),
        message=f.optional_text(doc, "msg", ""),
    )


def _optional_ts(item: f.JsonObject, path: str) -> int | None:
    return None if item.get("ts") is None else f.int_text(item, "ts", path) * f.NS_PER_MS


def _book(
    item: f.JsonObject, path: str, instrument: str, action: str | None
) -> DepthSnapshot | DepthDiff:
    bids = f.levels(f.get(item, "bids", path), f.join(path, "bids"))
    asks = f.levels(f.get(item, "asks", path), f.join(path, "asks"))
    checksum = f.optional_integer(item, "checksum", path)
    seq = f.optional_integer(item, "seqId", path)
    ts = _optional_ts(item, path)
    if action == "snapshot":
        return DepthSnapshot(
            instrument=instrument,
            seq=seq,
            bids=bids,
            asks=asks,
            checksum=checksum,
            venue_ts_ns=ts,
        )
    if action != "update":
        raise DecodeError(f"expected action 'snapshot' or 'update', got {action!r:.40}", "action")
    return DepthDiff(
        instrument=instrument,
        first_seq=seq,
        last_seq=seq,
        prev_seq=f.optional_integer(item, "prevSeqId", path),
        bids=bids,
        asks=asks,
        checksum=checksum,
        venue_ts_ns=ts,
    )


def _trade(item: f.JsonObject, path: str, instrument: str, action: str | None) -> Parsed:
    side = _SIDES.get(f.text(item, "side", path))
    if side is None:
        raise DecodeError(
            f"expected 'buy' or 'sell', got {item['side']!r:.40}", f.join(path, "side")
        )
    trade_id = f.text(item, "tradeId", path)
    ts = f.int_text(item, "ts", path) * f.NS_PER_MS
    payload = Trade(
        price=f.decimal(item, "px", path),
        size=f.decimal(item, "sz", path),
        side=side,
        trade_id=trade_id,
        trade_ts=ts,
    )
    seq = int(trade_id) if trade_id.isascii() and trade_id.isdigit() else None
    return Parsed(Kind.TRADE, instrument, seq, payload, ts)


def _ticker(item: f.JsonObject, path: str, instrument: str, action: str | None) -> Parsed:
    payload = Ticker(
        bid_price=f.decimal(item, "bidPx", path),
        bid_size=f.decimal(item, "bidSz", path),
        ask_price=f.decimal(item, "askPx", path),
        ask_size=f.decimal(item, "askSz", path),
        last_price=f.decimal(item, "last", path) if item.get("last") else None,
    )
    return Parsed(Kind.TICKER, instrument, None, payload, _optional_ts(item, path))


_CHANNELS: Final[dict[str, _Item]] = {
    "books": _book,
    "books-l2-tbt": _book,
    "books50-l2-tbt": _book,
    "trades": _trade,
    "tickers": _ticker,
}
