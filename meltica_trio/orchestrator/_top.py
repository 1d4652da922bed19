"""Consolidating venues' tops of book: pure functions, no state, no pool."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from meltica_trio.events import BookSnapshot, Level, MergedTopOfBook, Ticker, VenueTop


def venue_top(provider: str, payload: Ticker | BookSnapshot) -> VenueTop:
    """One venue's top of book from a ticker or a book snapshot.

    A snapshot side with no levels gives ``None`` for that side.
    """
    if isinstance(payload, Ticker):
        return VenueTop(
            provider=provider,
            bid=(payload.bid_price, payload.bid_size),
            ask=(payload.ask_price, payload.ask_size),
        )
    return VenueTop(
        provider=provider,
        bid=payload.bids[0] if payload.bids else None,
        ask=payload.asks[0] if payload.asks else None,
    )


def consolidate(venues: Iterable[VenueTop]) -> MergedTopOfBook:
    """The consolidated top of book across ``venues``.

    Venues are listed in provider order. The best bid is the highest bid price
    and the best ask the lowest ask price, compared as :class:`~decimal.Decimal`
    (so ``"10.0"`` beats ``"9.5"``, and ``"10"`` ties ``"10.00"``); a tie goes to
    the provider that sorts first, so the result does not depend on arrival order.
    A side that no venue quotes is ``None``, with no provider.
    """
    ordered = tuple(sorted(venues, key=lambda venue: venue.provider))
    best_bid: Level | None = None
    best_bid_provider: str | None = None
    best_ask: Level | None = None
    best_ask_provider: str | None = None
    bid_price = ask_price = Decimal(0)
    for venue in ordered:
        # Strict comparisons: an equal price later in provider order never wins.
        if venue.bid is not None:
            price = Decimal(venue.bid[0])
            if best_bid is None or price > bid_price:
                best_bid, best_bid_provider, bid_price = venue.bid, venue.provider, price
        if venue.ask is not None:
            price = Decimal(venue.ask[0])
            if best_ask is None or price < ask_price:
                best_ask, best_ask_provider, ask_price = venue.ask, venue.provider, price
    return MergedTopOfBook(
        best_bid=best_bid,
        best_bid_provider=best_bid_provider,
        best_ask=best_ask,
        best_ask_provider=best_ask_provider,
        venues=ordered,
    )
