"""Hypothesis strategies for canonical events and their payloads.

This module needs ``hypothesis``, which the ``dev`` extra installs
(``pip install 'meltica-trio[dev]'``); nothing else in meltica-trio imports it.

Every value drawn here survives :func:`~meltica_trio.encode_event` and
:func:`~meltica_trio.decode_event` unchanged, and is realistic where that is cheap
to ensure: books are sorted and uncrossed, a ticker's bid is not above its ask, a
candle's low and high bound its open and close, ``filled + remaining == quantity``
in every execution report, and a merged top of book names the venue that holds
each best price. Free text (ids, reasons) is arbitrary Unicode, to exercise the
codec. Envelope integers fit in int64 and timestamps are nanoseconds::

    from hypothesis import given
    from meltica_trio import Kind
    from meltica_trio.testing import events

    @given(events(kinds=[Kind.TRADE, Kind.BOOK_DELTA]))
    def test_ordering_keeps_each_stream_in_seq_order(event): ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from hypothesis import strategies as st

from meltica_trio._defaults import SCHEMA_VERSION
from meltica_trio.events import (
    BookDelta,
    BookSnapshot,
    BookState,
    BookStatus,
    ControlAck,
    ControlResult,
    Event,
    ExecReport,
    Kind,
    Kline,
    Level,
    MergedTopOfBook,
    OrderState,
    Payload,
    Side,
    Ticker,
    Trade,
    VenueTop,
)

__all__ = [
    "book_deltas",
    "book_snapshots",
    "book_statuses",
    "control_acks",
    "control_results",
    "decimal_texts",
    "events",
    "exec_reports",
    "klines",
    "levels",
    "merged_tops",
    "payloads",
    "tickers",
    "trades",
]

_INT64_MAX: Final = 2**63 - 1
_MAX_INTEGER_PART: Final = 10**12
"""Largest integer part of a drawn decimal; above any price or size a venue quotes."""
_MAX_FRACTION_DIGITS: Final = 10
_MAX_EXPONENT: Final = 18
_MAX_BOOK_LEVELS: Final = 10
"""Levels per side of a drawn book; enough for shape, small enough to stay fast."""
_MAX_SCALE: Final = 8
"""Decimal places of drawn order quantities (Binance and OKX use up to 8)."""

_non_negative: Final = st.integers(min_value=0, max_value=_INT64_MAX)
_timestamps_ns: Final = _non_negative
_texts: Final = st.text(max_size=24)
_optional_texts: Final = st.none() | _texts
_providers: Final = st.sampled_from(("binance", "okx", "sim")) | st.text(max_size=12)
_assets: Final = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=2, max_size=6)
_instruments: Final = st.just("") | st.builds("{}-{}".format, _assets, _assets)
_checksums: Final = st.none() | st.integers(min_value=-(2**31), max_value=2**32 - 1)
_commands: Final = st.sampled_from(("subscribe", "unsubscribe", "set_routing", "halt")) | _texts


@st.composite
def decimal_texts(draw: st.DrawFn, *, negative: bool = True, exponent: bool = True) -> str:
    """Exact decimal numbers as text: ``"0.00123400"``, ``"57000.1"``, ``"-3"``, ``"1e-8"``.

    Trailing zeros are kept (they are part of what a venue wrote), and the rarer
    spellings the codec accepts (``"5."``, ``".5"``, ``"2E+3"``) turn up too.

    Args:
        negative: also draw negative numbers (and ``"-0"``).
        exponent: also draw numbers with an exponent.
    """
    integer = str(draw(st.integers(min_value=0, max_value=_MAX_INTEGER_PART)))
    fraction = draw(st.text(alphabet="0123456789", max_size=_MAX_FRACTION_DIGITS))
    # Rolls of an eight-sided die keep the venue-like spellings the common case.
    form = draw(st.integers(min_value=0, max_value=7))
    if form == 0 and fraction:
        text = f".{fraction}"
    elif form <= 2:
        text = integer
    else:
        text = f"{integer}.{fraction}"
    if exponent and draw(st.integers(min_value=0, max_value=7)) == 0:
        marker = draw(st.sampled_from(("e", "E")))
        sign = draw(st.sampled_from(("", "-", "+")))
        text += f"{marker}{sign}{draw(st.integers(min_value=0, max_value=_MAX_EXPONENT))}"
    if negative and draw(st.booleans()):
        text = f"-{text}"
    return text


def levels() -> st.SearchStrategy[Level]:
    """One ``(price, size)`` level with non-negative decimals."""
    return st.tuples(decimal_texts(negative=False), decimal_texts(negative=False))


def _sides(
    draw: st.DrawFn, *, allow_zero_size: bool
) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
    """Bids (best, highest, first) and asks (best, lowest, first) of an uncrossed book."""
    prices = draw(
        st.lists(
            decimal_texts(negative=False),
            max_size=2 * _MAX_BOOK_LEVELS,
            unique_by=Decimal,
        )
    )
    prices.sort(key=Decimal)
    split = draw(st.integers(min_value=0, max_value=len(prices)))
    sizes = decimal_texts(negative=False)
    if not allow_zero_size:
        sizes = sizes.filter(lambda size: Decimal(size) > 0)
    bids = tuple((price, draw(sizes)) for price in reversed(prices[:split]))
    asks = tuple((price, draw(sizes)) for price in prices[split:])
    return bids, asks


def trades() -> st.SearchStrategy[Trade]:
    """Public trades with a positive size."""
    return st.builds(
        Trade,
        price=decimal_texts(negative=False),
        size=decimal_texts(negative=False).filter(lambda size: Decimal(size) > 0),
        side=st.sampled_from(Side),
        trade_id=_texts,
        trade_ts=_timestamps_ns,
    )


@st.composite
def book_snapshots(draw: st.DrawFn) -> BookSnapshot:
    """Sorted, uncrossed books of up to 20 levels, every size positive."""
    bids, asks = _sides(draw, allow_zero_size=False)
    return BookSnapshot(bids=bids, asks=asks, checksum=draw(_checksums))


@st.composite
def book_deltas(draw: st.DrawFn) -> BookDelta:
    """Sorted book changes; a size of zero (``"0"``, ``"0.000"``...) removes a level."""
    bids, asks = _sides(draw, allow_zero_size=True)
    prev_seq = draw(st.none() | _non_negative)
    return BookDelta(bids=bids, asks=asks, prev_seq=prev_seq, checksum=draw(_checksums))


@st.composite
def tickers(draw: st.DrawFn) -> Ticker:
    """Best bid and offer with the bid not above the ask."""
    bid_price, ask_price = sorted(
        (draw(decimal_texts(negative=False)), draw(decimal_texts(negative=False))), key=Decimal
    )
    return Ticker(
        bid_price=bid_price,
        bid_size=draw(decimal_texts(negative=False)),
        ask_price=ask_price,
        ask_size=draw(decimal_texts(negative=False)),
        last_price=draw(st.none() | decimal_texts(negative=False)),
    )


@st.composite
def klines(draw: st.DrawFn) -> Kline:
    """Candles whose low and high bound the open and close, opening before they close."""
    prices = sorted((draw(decimal_texts(negative=False)) for _ in range(4)), key=Decimal)
    low, first, second, high = prices
    open_, close = (first, second) if draw(st.booleans()) else (second, first)
    open_ts = draw(_timestamps_ns)
    return Kline(
        interval=draw(st.sampled_from(("1s", "1m", "5m", "1h", "1d")) | _texts),
        open_ts=open_ts,
        close_ts=draw(st.integers(min_value=open_ts, max_value=_INT64_MAX)),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=draw(decimal_texts(negative=False)),
        closed=draw(st.booleans()),
    )


@st.composite
def _venue_tops(draw: st.DrawFn) -> VenueTop:
    bid, ask = draw(st.none() | levels()), draw(st.none() | levels())
    if bid is not None and ask is not None and Decimal(bid[0]) > Decimal(ask[0]):
        bid, ask = (ask[0], bid[1]), (bid[0], ask[1])
    return VenueTop(provider=draw(_providers), bid=bid, ask=ask)


def _best(venues: Iterable[VenueTop], side: str) -> tuple[Level | None, str | None]:
    quotes = [(venue.bid if side == "bid" else venue.ask, venue.provider) for venue in venues]
    present = [(level, provider) for level, provider in quotes if level is not None]
    if not present:
        return None, None
    pick = max if side == "bid" else min
    return pick(present, key=lambda quote: Decimal(quote[0][0]))


@st.composite
def merged_tops(draw: st.DrawFn) -> MergedTopOfBook:
    """Consolidated tops whose best prices and providers follow from their venues."""
    venues = tuple(draw(st.lists(_venue_tops(), max_size=4, unique_by=lambda v: v.provider)))
    best_bid, best_bid_provider = _best(venues, "bid")
    best_ask, best_ask_provider = _best(venues, "ask")
    return MergedTopOfBook(
        best_bid=best_bid,
        best_bid_provider=best_bid_provider,
        best_ask=best_ask,
        best_ask_provider=best_ask_provider,
        venues=venues,
    )


def _units_text(units: int, scale: int) -> str:
    """``units`` of ``10**-scale`` as a decimal string: ``_units_text(1500, 3) == "1.500"``."""
    if scale == 0:
        return str(units)
    digits = str(units).rjust(scale + 1, "0")
    return f"{digits[:-scale]}.{digits[-scale:]}"


def _filled_units(draw: st.DrawFn, state: OrderState, quantity: int) -> int:
    if state in (OrderState.NEW, OrderState.ACK, OrderState.REJECTED):
        return 0
    if state is OrderState.FILLED:
        return quantity
    if state is OrderState.PARTIAL:
        return draw(st.integers(min_value=1, max_value=quantity - 1))
    return draw(st.integers(min_value=0, max_value=quantity - 1))  # cancelled, expired


@st.composite
def exec_reports(draw: st.DrawFn) -> ExecReport:
    """Order transitions with fills consistent with the state and the quantity."""
    state = draw(st.sampled_from(OrderState))
    scale = draw(st.integers(min_value=0, max_value=_MAX_SCALE))
    min_quantity = 2 if state is OrderState.PARTIAL else 1
    quantity = draw(st.integers(min_value=min_quantity, max_value=_MAX_INTEGER_PART))
    filled = _filled_units(draw, state, quantity)
    last_fill_size = draw(st.integers(min_value=1, max_value=filled)) if filled else None
    return ExecReport(
        exec_id=draw(_texts),
        consumer_id=draw(_texts),
        client_order_id=draw(_texts),
        venue_order_id=None if state is OrderState.NEW else draw(_optional_texts),
        side=draw(st.sampled_from(Side)),
        price=draw(st.none() | decimal_texts(negative=False)),
        quantity=_units_text(quantity, scale),
        state=state,
        filled=_units_text(filled, scale),
        remaining=_units_text(quantity - filled, scale),
        last_fill_price=draw(decimal_texts(negative=False)) if filled else None,
        last_fill_size=None if last_fill_size is None else _units_text(last_fill_size, scale),
        reason=draw(_optional_texts),
    )


@st.composite
def control_acks(draw: st.DrawFn) -> ControlAck:
    """Command acknowledgements; a refusal always says why."""
    accepted = draw(st.booleans())
    return ControlAck(
        command_id=draw(_texts),
        command=draw(_commands),
        accepted=accepted,
        reason=None if accepted else draw(_texts),
        routing_version=draw(_non_negative),
    )


@st.composite
def control_results(draw: st.DrawFn) -> ControlResult:
    """Final command outcomes; a failure always says why."""
    ok = draw(st.booleans())
    return ControlResult(
        command_id=draw(_texts),
        command=draw(_commands),
        ok=ok,
        reason=None if ok else draw(_texts),
        detail=tuple(draw(st.lists(st.tuples(_texts, _texts), max_size=4))),
    )


def book_statuses() -> st.SearchStrategy[BookStatus]:
    """Book state changes, with or without a last applied sequence."""
    return st.builds(
        BookStatus,
        state=st.sampled_from(BookState),
        reason=_optional_texts,
        last_seq=st.none() | _non_negative,
    )


_PAYLOADS: Final[Mapping[Kind, Callable[[], st.SearchStrategy[Payload]]]] = MappingProxyType(
    {
        Kind.TRADE: trades,
        Kind.BOOK_SNAPSHOT: book_snapshots,
        Kind.BOOK_DELTA: book_deltas,
        Kind.TICKER: tickers,
        Kind.KLINE: klines,
        Kind.MERGED: merged_tops,
        Kind.EXEC_REPORT: exec_reports,
        Kind.CONTROL_ACK: control_acks,
        Kind.CONTROL_RESULT: control_results,
        Kind.BOOK_STATUS: book_statuses,
    }
)


def payloads(kind: Kind) -> st.SearchStrategy[Payload]:
    """Payloads of the class that ``kind`` carries (see ``PAYLOAD_TYPE``)."""
    return _PAYLOADS[kind]()


def events(kinds: Iterable[Kind] | None = None) -> st.SearchStrategy[Event]:
    """Complete events, built directly (not lent by a pool), with a matching payload.

    Args:
        kinds: the kinds to draw from; every kind when ``None``.

    Raises:
        ValueError: ``kinds`` is empty.
    """
    chosen = tuple(Kind) if kinds is None else tuple(kinds)
    if not chosen:
        raise ValueError("events() needs at least one kind")
    return st.one_of([_events_of(kind) for kind in dict.fromkeys(chosen)])


def _events_of(kind: Kind) -> st.SearchStrategy[Event]:
    return st.builds(
        Event,
        event_id=_non_negative,
        kind=st.just(kind),
        provider=_providers,
        instrument=_instruments,
        seq=st.none() | _non_negative,
        ingest_ts=_timestamps_ns,
        emit_ts=_timestamps_ns,
        routing_version=_non_negative,
        trace_id=_optional_texts,
        decision_id=_optional_texts,
        schema_version=st.just(SCHEMA_VERSION),
        payload=payloads(kind),
        skipped=st.just(0) | _non_negative,
    )
