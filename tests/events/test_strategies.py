"""The public Hypothesis strategies draw valid, realistic events."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meltica_trio.events import (
    PAYLOAD_TYPE,
    BookDelta,
    BookSnapshot,
    Event,
    ExecReport,
    Kind,
    Kline,
    MergedTopOfBook,
    OrderState,
    Payload,
    Ticker,
)
from meltica_trio.events._codec import _DECIMAL
from meltica_trio.testing import (
    book_deltas,
    book_snapshots,
    decimal_texts,
    events,
    exec_reports,
    klines,
    merged_tops,
    payloads,
    tickers,
)

INT64 = range(-(2**63), 2**63)


@given(decimal_texts())
def test_decimal_texts_are_exact_decimals_the_codec_accepts(text: str) -> None:
    assert _DECIMAL.fullmatch(text)
    assert Decimal(text).is_finite()


@given(decimal_texts(negative=False, exponent=False))
def test_decimal_texts_can_be_limited_to_plain_non_negative_numbers(text: str) -> None:
    assert not text.startswith("-")
    assert "e" not in text.lower()


@pytest.mark.parametrize("kind", list(Kind))
@given(data=st.data())
def test_payloads_draws_the_class_of_the_kind(kind: Kind, data: st.DataObject) -> None:
    payload: Payload = data.draw(payloads(kind))
    assert type(payload) is PAYLOAD_TYPE[kind]


@given(events(kinds=[Kind.TRADE, Kind.EXEC_REPORT]))
def test_events_draws_only_the_kinds_asked_for(event: Event) -> None:
    assert event.kind in (Kind.TRADE, Kind.EXEC_REPORT)


@given(events())
def test_events_are_complete_fresh_and_fit_in_int64(event: Event) -> None:
    assert type(event.payload) is PAYLOAD_TYPE[event.kind]
    assert not hasattr(event, "_pool")
    for value in (event.event_id, event.ingest_ts, event.emit_ts, event.routing_version):
        assert value in INT64
    assert event.seq is None or event.seq in INT64


def test_events_needs_at_least_one_kind() -> None:
    with pytest.raises(ValueError, match="at least one kind"):
        events(kinds=[])


def _prices(levels: tuple[tuple[str, str], ...]) -> list[Decimal]:
    return [Decimal(price) for price, _ in levels]


@given(book_snapshots())
def test_book_snapshots_are_sorted_uncrossed_and_have_positive_sizes(book: BookSnapshot) -> None:
    bids, asks = _prices(book.bids), _prices(book.asks)
    assert bids == sorted(bids, reverse=True)
    assert len(set(bids)) == len(bids)
    assert asks == sorted(asks)
    assert len(set(asks)) == len(asks)
    if bids and asks:
        assert bids[0] < asks[0]
    assert all(Decimal(size) > 0 for _, size in book.bids + book.asks)


@given(book_deltas())
def test_book_deltas_are_sorted_and_uncrossed(delta: BookDelta) -> None:
    bids, asks = _prices(delta.bids), _prices(delta.asks)
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    if bids and asks:
        assert bids[0] < asks[0]


@given(tickers())
def test_tickers_never_bid_above_the_ask(ticker: Ticker) -> None:
    assert Decimal(ticker.bid_price) <= Decimal(ticker.ask_price)


@given(klines())
def test_klines_are_bounded_by_their_low_and_high(kline: Kline) -> None:
    low, high = Decimal(kline.low), Decimal(kline.high)
    assert low <= Decimal(kline.open) <= high
    assert low <= Decimal(kline.close) <= high
    assert kline.open_ts <= kline.close_ts


@given(exec_reports())
def test_exec_reports_fill_consistently_with_their_state(report: ExecReport) -> None:
    quantity, filled = Decimal(report.quantity), Decimal(report.filled)
    assert filled + Decimal(report.remaining) == quantity
    assert 0 <= filled <= quantity
    if report.state is OrderState.FILLED:
        assert filled == quantity
    if report.state in (OrderState.NEW, OrderState.ACK, OrderState.REJECTED):
        assert filled == 0
    if report.state is OrderState.PARTIAL:
        assert 0 < filled < quantity
    if report.last_fill_size is not None:
        assert 0 < Decimal(report.last_fill_size) <= filled


@given(merged_tops())
def test_merged_tops_name_the_venue_with_each_best_price(top: MergedTopOfBook) -> None:
    bids = [(Decimal(v.bid[0]), v.provider) for v in top.venues if v.bid is not None]
    asks = [(Decimal(v.ask[0]), v.provider) for v in top.venues if v.ask is not None]
    if bids:
        assert top.best_bid is not None
        assert Decimal(top.best_bid[0]) == max(price for price, _ in bids)
        assert (Decimal(top.best_bid[0]), top.best_bid_provider) in bids
    else:
        assert top.best_bid is None
        assert top.best_bid_provider is None
    if asks:
        assert top.best_ask is not None
        assert Decimal(top.best_ask[0]) == min(price for price, _ in asks)
        assert (Decimal(top.best_ask[0]), top.best_ask_provider) in asks
    else:
        assert top.best_ask is None
        assert top.best_ask_provider is None
    assert len({venue.provider for venue in top.venues}) == len(top.venues)
