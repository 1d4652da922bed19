"""Consolidating tops of book: Decimal comparisons, ties, empty sides, provider order."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meltica_trio import BookSnapshot, Ticker, VenueTop
from meltica_trio.orchestrator import consolidate, venue_top


def _top(provider: str, bid: str | None, ask: str | None) -> VenueTop:
    return VenueTop(
        provider=provider,
        bid=None if bid is None else (bid, "1"),
        ask=None if ask is None else (ask, "1"),
    )


def test_a_ticker_gives_both_sides_with_sizes() -> None:
    ticker = Ticker(bid_price="9.5", bid_size="2", ask_price="9.6", ask_size="3", last_price="9")
    assert venue_top("okx", ticker) == VenueTop(provider="okx", bid=("9.5", "2"), ask=("9.6", "3"))


def test_a_snapshot_gives_its_first_levels_and_none_for_an_empty_side() -> None:
    book = BookSnapshot(bids=(("10", "1"), ("9", "5")), asks=())
    assert venue_top("binance", book) == VenueTop(provider="binance", bid=("10", "1"), ask=None)
    empty = BookSnapshot(bids=(), asks=())
    assert venue_top("binance", empty) == VenueTop(provider="binance", bid=None, ask=None)


def test_prices_compare_as_decimals_not_as_text() -> None:
    # As text "9.5" > "10.0" and "10.0" < "9.5": the wrong venue would win both sides.
    merged = consolidate([_top("a", "9.5", "10.0"), _top("b", "10.0", "9.5")])
    assert merged.best_bid == ("10.0", "1")
    assert merged.best_bid_provider == "b"
    assert merged.best_ask == ("9.5", "1")
    assert merged.best_ask_provider == "b"


def test_a_tie_goes_to_the_provider_that_sorts_first_whatever_the_input_order() -> None:
    # "10" and "10.00" are the same price; so are "0.5" and ".50".
    venues = [_top("okx", "10.00", ".50"), _top("binance", "10", "0.5")]
    for order in (venues, venues[::-1]):
        merged = consolidate(order)
        assert merged.best_bid == ("10", "1")
        assert merged.best_bid_provider == "binance"
        assert merged.best_ask == ("0.5", "1")
        assert merged.best_ask_provider == "binance"
        assert [venue.provider for venue in merged.venues] == ["binance", "okx"]


def test_empty_sides_are_skipped_and_a_side_nobody_quotes_is_none() -> None:
    merged = consolidate([_top("a", None, "5"), _top("b", "4", None)])
    assert (merged.best_bid, merged.best_bid_provider) == (("4", "1"), "b")
    assert (merged.best_ask, merged.best_ask_provider) == (("5", "1"), "a")
    nobody = consolidate([_top("a", None, None), _top("b", None, None)])
    assert (nobody.best_bid, nobody.best_bid_provider) == (None, None)
    assert (nobody.best_ask, nobody.best_ask_provider) == (None, None)


_prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**6), places=4)


@given(st.dictionaries(st.sampled_from("abcdef"), st.tuples(_prices, _prices), min_size=1))
def test_the_best_bid_is_the_highest_and_the_best_ask_the_lowest(
    quotes: dict[str, tuple[Decimal, Decimal]],
) -> None:
    merged = consolidate(_top(p, str(bid), str(ask)) for p, (bid, ask) in quotes.items())
    best_bid = max(bid for bid, _ in quotes.values())
    best_ask = min(ask for _, ask in quotes.values())
    assert merged.best_bid is not None
    assert merged.best_ask is not None
    assert Decimal(merged.best_bid[0]) == best_bid
    assert Decimal(merged.best_ask[0]) == best_ask
    assert merged.best_bid_provider == min(p for p, (bid, _) in quotes.items() if bid == best_bid)
    assert merged.best_ask_provider == min(p for p, (_, ask) in quotes.items() if ask == best_ask)
