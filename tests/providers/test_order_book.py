"""The order book keeps levels best first with the venue's strings; OKX checksums."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from meltica_trio.events import Level
from meltica_trio.providers import OrderBook, _book, book_checksum, checksum_text, signed_crc32
from meltica_trio.providers._book import KEY_SCALE, is_zero, price_key


def test_levels_are_best_first_on_both_sides() -> None:
    book = OrderBook()
    book.load(
        bids=[("99.5", "1"), ("100", "2"), ("9.75", "3")],
        asks=[("101", "4"), ("100.5", "5"), ("1000", "6")],
    )
    assert book.top() == (
        (("100", "2"), ("99.5", "1"), ("9.75", "3")),
        (("100.5", "5"), ("101", "4"), ("1000", "6")),
    )
    assert book.top(1) == ((("100", "2"),), (("100.5", "5"),))


@pytest.mark.parametrize("zero", ["0", "0.00000000", "0.0", "00", "0e-8", ".0"])
def test_zero_size_removes_level(zero: str) -> None:
    book = OrderBook()
    book.load(bids=[("1.5", "2")], asks=[("2.5", "3")])
    book.apply(bids=[("1.5", zero)], asks=[("2.5", zero)])
    assert book.top() == ((), ())
    assert (book.bid_count, book.ask_count) == (0, 0)


def test_removing_an_absent_level_is_a_no_op() -> None:
    book = OrderBook()
    book.load(bids=[("1.5", "2")], asks=[])
    book.apply(bids=[("1.4", "0")], asks=[("9", "0.000")])
    assert book.top() == ((("1.5", "2"),), ())


def test_equal_prices_are_one_level_keeping_the_latest_text() -> None:
    book = OrderBook()
    book.load(bids=[("0.3513", "1")], asks=[])
    book.apply(bids=[("0.35130000", "6195.00000000")], asks=[])
    assert book.top_bids() == (("0.35130000", "6195.00000000"),)


def test_load_replaces_the_whole_book_and_skips_zero_sizes() -> None:
    book = OrderBook()
    book.load(bids=[("1", "1")], asks=[("2", "1")])
    book.load(bids=[("3", "1"), ("2", "0")], asks=[])
    assert book.top() == ((("3", "1"),), ())


@pytest.mark.parametrize(
    ("size", "zero"),
    [
        ("0", True),
        ("0.000", True),
        ("0E+3", True),
        ("10", False),
        ("0.01", False),
        ("1e-8", False),
    ],
)
def test_is_zero(size: str, zero: bool) -> None:
    assert is_zero(size) is zero
    assert (Decimal(size) == 0) is zero


# OKX v5 docs, "Calculate Checksum", both examples (price and size strings as sent).
OKX_DOC_EXAMPLES = [
    (
        [("3366.1", "7"), ("3366", "6")],
        [("3366.8", "9"), ("3368", "8")],
        "3366.1:7:3366.8:9:3366:6:3368:8",
        -1881014294,
    ),
    (
        [("3366.1", "7")],
        [("3366.8", "9"), ("3368", "8"), ("3372", "8")],
        "3366.1:7:3366.8:9:3368:8:3372:8",
        831078360,
    ),
]


@pytest.mark.parametrize(("bids", "asks", "text", "checksum"), OKX_DOC_EXAMPLES)
def test_okx_documented_checksum_examples(
    bids: list[Level], asks: list[Level], text: str, checksum: int
) -> None:
    assert checksum_text(bids, asks) == text
    assert book_checksum(bids, asks) == checksum
    book = OrderBook()
    book.load(bids, asks)
    assert book.checksum_text() == text
    assert book.checksum() == checksum


def test_checksum_uses_strings_as_received_not_normalised() -> None:
    book = OrderBook()
    book.load(bids=[("0.5000", "1")], asks=[])
    assert book.checksum_text() == "0.5000:1"
    assert book.checksum() != signed_crc32("0.5:1")


def test_checksum_covers_only_the_top_25_levels_per_side() -> None:
    bids = [(str(1000 - i), "1") for i in range(30)]
    asks = [(str(1001 + i), "1") for i in range(27)]
    book = OrderBook()
    book.load(bids, asks)
    assert book.checksum_text() == checksum_text(bids[:25], asks[:25])
    assert book.checksum_text().count(":") == 2 * 50 - 1
    assert book.checksum() == book_checksum(bids, asks)


def test_signed_crc32_wraps_into_signed_range() -> None:
    assert signed_crc32("") == 0
    values = [signed_crc32(str(i)) for i in range(200)]
    assert all(-(2**31) <= v < 2**31 for v in values)
    assert any(v < 0 for v in values)


# -- exact price keys ----------------------------------------------------------------

wide_prices = st.one_of(
    st.from_regex(r"[0-9]{1,7}(\.[0-9]{0,24})?", fullmatch=True),
    st.from_regex(r"\.[0-9]{1,24}", fullmatch=True),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(0, 9999), st.integers(-30, 8)),
)


@given(wide_prices, wide_prices)
def test_price_keys_compare_exactly_like_decimals(a: str, b: str) -> None:
    ka, kb, da, db = price_key(a), price_key(b), Decimal(a), Decimal(b)
    assert (ka < kb, ka == kb, ka > kb) == (da < db, da == db, da > db)
    # Decimal arithmetic rounds to the context's precision; the keys must not.
    with localcontext(prec=200):
        assert price_key(a, negate=True) == -ka
        assert ka == da.scaleb(KEY_SCALE)


def test_price_key_keeps_more_digits_than_the_decimal_context() -> None:
    long = "1" + "0" * 24 + ".0001"  # 29 significant digits; the default context has 28
    assert price_key(long) == price_key(long + "0")
    assert price_key(long) > price_key("1" + "0" * 24)
    assert price_key(long, negate=True) < price_key("1" + "0" * 24, negate=True)


def test_price_key_is_an_int_up_to_the_scale_and_a_decimal_past_it() -> None:
    assert price_key("30238.8") == 30238_8 * 10 ** (KEY_SCALE - 1)
    assert price_key("1e1") == price_key("10") == 10 ** (KEY_SCALE + 1)
    assert type(price_key("0." + "0" * (KEY_SCALE - 1) + "1")) is int
    tiny = price_key("0." + "0" * KEY_SCALE + "1")
    assert tiny == Decimal("0.1")
    assert type(tiny) is Decimal
    assert type(price_key("1e-30")) is Decimal
    assert price_key("0") < tiny < price_key("1e-18")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "x", "1.2.3"])
def test_price_key_refuses_what_is_not_decimal_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid literal"):
        price_key(text)


def test_levels_past_the_int_scale_sort_among_the_others() -> None:
    book = OrderBook()
    micro = "0." + "0" * 20 + "1"
    book.load(bids=[("0.00000001", "1"), (micro, "2"), ("1e-19", "3")], asks=[(micro, "4")])
    assert book.top_bids() == (("0.00000001", "1"), ("1e-19", "3"), (micro, "2"))
    book.apply(bids=[(micro, "0")], asks=[("1e-21", "5")])
    assert book.top() == ((("0.00000001", "1"), ("1e-19", "3")), (("1e-21", "5"),))


def test_key_cache_is_emptied_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_book, "KEY_CACHE_SIZE", 4)
    book = OrderBook()
    book.load(bids=[(str(i), "1") for i in range(1, 6)], asks=[])
    assert len(book._bids.cache) == 5  # a snapshot is cached whole
    book.apply(bids=[(str(i), "1") for i in range(6, 10)], asks=[])
    assert set(book._bids.cache) == {"6", "7", "8", "9"}  # emptied on the first miss
    book.load(bids=[("1", "1")], asks=[])
    assert book.top_bids() == (("1", "1"),)
    assert set(book._bids.cache) == {"1"}


def test_top_of_zero_depth_is_empty() -> None:
    book = OrderBook()
    book.load(bids=[("1", "1")], asks=[("2", "1")])
    assert book.top(0) == ((), ())
    assert book.checksum_text(0) == ""


prices = st.integers(min_value=1, max_value=60).map(lambda i: f"{i / 4:.2f}") | st.sampled_from(
    ["0.5", "0.50", "5e-1", "1e1", "10.00", "0." + "0" * 20 + "1", "1e-21"]
)
sizes = st.sampled_from(["0", "0.000", "1", "2.50", "0.00000001", "10"])


class OrderBookMatchesReference(RuleBasedStateMachine):
    """Any sequence of updates leaves the book equal to a plain dict reference."""

    def __init__(self) -> None:
        super().__init__()
        self.book = OrderBook()
        self.bids: dict[Decimal, Level] = {}
        self.asks: dict[Decimal, Level] = {}

    @staticmethod
    def _set(reference: dict[Decimal, Level], price: str, size: str) -> None:
        if Decimal(size) == 0:
            reference.pop(Decimal(price), None)
        else:
            reference[Decimal(price)] = (price, size)

    @rule(price=prices, size=sizes, bid=st.booleans())
    def set_level(self, price: str, size: str, bid: bool) -> None:
        if bid:
            self.book.apply([(price, size)], [])
            self._set(self.bids, price, size)
        else:
            self.book.apply([], [(price, size)])
            self._set(self.asks, price, size)

    @rule(levels=st.lists(st.tuples(prices, sizes), max_size=8))
    def load(self, levels: list[Level]) -> None:
        self.book.load(levels, levels)
        self.bids.clear()
        self.asks.clear()
        for price, size in levels:
            self._set(self.bids, price, size)
            self._set(self.asks, price, size)

    @invariant()
    def matches_reference(self) -> None:
        bids = tuple(self.bids[k] for k in sorted(self.bids, reverse=True))
        asks = tuple(self.asks[k] for k in sorted(self.asks))
        assert self.book.top() == (bids, asks)
        assert self.book.top(3) == (bids[:3], asks[:3])
        assert self.book.checksum() == book_checksum(bids, asks)


TestOrderBookMatchesReference = OrderBookMatchesReference.TestCase
