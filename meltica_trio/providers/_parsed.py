"""What the venue parsers return: small immutable records, one per venue message.

A parser turns one venue frame into a list of these, never into envelopes: the
provider's I/O loop stamps envelopes (event ids, ingest time, routing version) and the
book assembler turns depth records into book events. Keeping the parsers' output this
plain is what lets the same parser serve a live connection, a replay and a test::

    Parsed          a trade, ticker or kline, ready to publish as it is
    DepthDiff       one depth update, for the book assembler
    DepthSnapshot   one full book (Binance REST, OKX ``action: snapshot``)
    ControlFrame    a venue's answer to a request (subscribe ack, error, pong)

Prices and sizes stay the strings the venue sent; levels are ``(price, size)`` tuples
in the venue's order (best first in snapshots).
"""

from __future__ import annotations

from typing import TypeAlias

import attrs

from meltica_trio.events import Kind, Kline, Level, Ticker, Trade


@attrs.frozen
class Parsed:
    """A trade, ticker or kline as the venue sent it, in canonical form.

    Attributes:
        kind: ``Kind.TRADE``, ``Kind.TICKER`` or ``Kind.KLINE``.
        instrument: canonical instrument (``"NKN-USDT"``; OKX ids as sent).
        seq: the venue's sequence for this stream where it has one (trade id,
            Binance ``bookTicker`` update id), else ``None``.
        payload: the canonical payload.
        venue_ts_ns: the venue's event time in ns since the epoch, if it sent one.
    """

    kind: Kind
    instrument: str
    seq: int | None
    payload: Trade | Ticker | Kline
    venue_ts_ns: int | None


@attrs.frozen(kw_only=True)
class DepthDiff:
    """One depth update: absolute sizes per level, size zero removes the level.

    Attributes:
        instrument: canonical instrument.
        first_seq: first update id it covers (Binance ``U``; OKX ``seqId``), if any.
        last_seq: last update id it covers (Binance ``u``; OKX ``seqId``), if any.
        prev_seq: the update id it follows where the venue says so (OKX
            ``prevSeqId``, Binance futures ``pu``), else ``None``.
        bids: changed bid levels as sent.
        asks: changed ask levels as sent.
        checksum: the venue's checksum of its book after this update (OKX), if any.
        venue_ts_ns: the venue's event time in ns, if it sent one.
    """

    instrument: str
    first_seq: int | None
    last_seq: int | None
    prev_seq: int | None
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    checksum: int | None = None
    venue_ts_ns: int | None = None


@attrs.frozen(kw_only=True)
class DepthSnapshot:
    """A full book (or as much of it as the venue sends), best levels first.

    Attributes:
        instrument: canonical instrument.
        seq: the update id the book is at (Binance ``lastUpdateId``, OKX ``seqId``).
        bids: bid levels, highest first.
        asks: ask levels, lowest first.
        checksum: the venue's checksum of this book (OKX), if any.
        venue_ts_ns: the venue's time of the book in ns, if it sent one.
    """

    instrument: str
    seq: int | None
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    checksum: int | None = None
    venue_ts_ns: int | None = None


@attrs.frozen(kw_only=True)
class ControlFrame:
    """A venue's answer to something the connection asked for, not market data.

    OKX ``{"event": "subscribe" | "unsubscribe" | "error", ...}``, the text ``pong``,
    and Binance ``{"result": ..., "id": ...}`` / ``{"error": {...}}`` responses parse
    to this. An error from the venue is a well-formed frame, so it is returned (with
    ``event == "error"``) rather than raised: the I/O loop decides what a refused
    subscription means.

    Attributes:
        event: ``"subscribe"``, ``"unsubscribe"``, ``"error"``, ``"pong"``,
            ``"result"``, or the venue's other event names as sent.
        channel: the channel it is about, if the venue says.
        instrument: the instrument it is about, if the venue says.
        code: the venue's error code, if any.
        message: the venue's message, if any.
    """

    event: str
    channel: str | None = None
    instrument: str | None = None
    code: str | None = None
    message: str | None = None

    @property
    def is_error(self) -> bool:
        """True when the venue refused or failed a request."""
        return self.event == "error"


VenueMessage: TypeAlias = Parsed | DepthDiff | DepthSnapshot | ControlFrame
"""Anything a venue parser returns."""
