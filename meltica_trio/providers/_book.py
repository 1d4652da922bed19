"""A price-level order book that keeps every price and size exactly as the venue wrote it.

Levels are ordered by their exact numeric price (never a float), so ``"0.3513"`` and
``"0.35130000"`` are the same level, but each level keeps the strings it was last
given: outputs and venue checksums use the text as received (OKX: "if price is
'0.5000', do not calculate the checksum by '0.5'").
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import zip_longest
from typing import Final, TypeAlias

import attrs

from meltica_trio.events import Level

CHECKSUM_DEPTH: Final = 25
"""Levels per side in an OKX book checksum (OKX v5 docs, "Calculate Checksum")."""

KEY_SCALE: Final = 18
"""Decimal places kept exactly in an int price key; beyond it keys are Decimals."""
_PAD: Final = tuple("0" * (KEY_SCALE - n) for n in range(KEY_SCALE + 1))
# "0", "0.0" ... "0.000000000000000000": how venues write a removed level.
_ZEROS: Final = frozenset(["0", *("0." + "0" * n for n in range(1, KEY_SCALE + 1))])
KEY_CACHE_SIZE: Final = 4096
"""Price texts per book side whose key is remembered; the cache is emptied when full
(a few hundred kB per side at most)."""
_SIGN_BIT: Final = 1 << 31
_WRAP: Final = 1 << 32


def is_zero(size: str) -> bool:
    """True if the decimal text ``size`` is zero (``"0"``, ``"0.00000000"``, ``"0e-8"``)."""
    rest = size.lstrip("0.")
    return not rest or rest[0] in "eE"


def signed_crc32(text: str) -> int:
    """CRC32 of the ASCII ``text`` as a signed 32-bit integer, as OKX sends it."""
    crc = zlib.crc32(text.encode("ascii"))
    return crc - _WRAP if crc >= _SIGN_BIT else crc


def checksum_text(
    bids: Sequence[Level], asks: Sequence[Level], depth: int = CHECKSUM_DEPTH
) -> str:
    """The OKX checksum string of a book given best-first levels.

    ``bid1px:bid1sz:ask1px:ask1sz:bid2px:...`` over the top ``depth`` levels of each
    side; where one side runs out, the other side's remaining levels follow alone.
    """
    parts: list[str] = []
    for bid, ask in zip_longest(bids[:depth], asks[:depth]):
        if bid is not None:
            parts.append(f"{bid[0]}:{bid[1]}")
        if ask is not None:
            parts.append(f"{ask[0]}:{ask[1]}")
    return ":".join(parts)


def book_checksum(
    bids: Sequence[Level], asks: Sequence[Level], depth: int = CHECKSUM_DEPTH
) -> int:
    """The OKX checksum (signed CRC32 of :func:`checksum_text`) of best-first levels."""
    return signed_crc32(checksum_text(bids, asks, depth))


PriceKey: TypeAlias = int | Decimal
"""A price times ``10**KEY_SCALE``, exactly: an int, or a Decimal past that precision."""


def price_key(price: str, negate: bool = False) -> PriceKey:
    """The exact sort key of a price: ``price * 10**KEY_SCALE`` (negated if asked).

    An int whenever the price has at most ``KEY_SCALE`` decimal places (every price a
    venue quotes), because ints compare about three times as fast as Decimals in a
    bisect; otherwise the exactly scaled Decimal. Ints and Decimals compare exactly
    with each other, so a side may hold both.

    Raises:
        ValueError: ``price`` is not decimal text (the parsers never pass such text).
    """
    whole, _, fraction = price.partition(".")
    if len(fraction) <= KEY_SCALE and "e" not in price and "E" not in price:
        # Plain notation ("30238.8", "0.00000638", ".5"): the digits, padded, are the key.
        value = int(whole + fraction + _PAD[len(fraction)])
        return -value if negate else value
    sign, digits, exponent = Decimal(price).as_tuple()
    if not isinstance(exponent, int):  # pragma: no cover (text with an "e" is finite)
        raise ValueError(f"not a finite price: {price!r}")
    sign ^= negate
    exponent += KEY_SCALE
    if exponent < 0:
        return Decimal((sign, digits, exponent))
    scaled: int = int("".join(map(str, digits))) * 10**exponent
    return -scaled if sign else scaled


def _level(fragment: str) -> Level:
    price, _, size = fragment.partition(":")
    return (price, size)


@attrs.define(eq=False)
class _Side:
    """One side of a book: sorted keys and each level's ``"price:size"``, best last.

    Keys ascend, so the best level (highest bid, lowest ask) sits at the end, where
    most changes happen and an insert or delete shifts only the few entries after
    it. Keeping the level as its checksum fragment makes a checksum string a slice
    and a join; the rare full snapshot splits the fragments back into levels.
    """

    negate: bool
    keys: list[PriceKey] = attrs.field(factory=list)
    frags: list[str] = attrs.field(factory=list)
    # Price text -> key: a venue repeats the same few hundred prices over and over.
    cache: dict[str, PriceKey] = attrs.field(factory=dict)

    def clear(self) -> None:
        self.keys.clear()
        self.frags.clear()

    def load(self, levels: Iterable[Level]) -> None:
        """Replace the side wholesale: one sort instead of an insert per level."""
        negate, cache = self.negate, self.cache
        if len(cache) >= KEY_CACHE_SIZE:
            cache.clear()
        table: dict[PriceKey, Level] = {}
        for price, size in levels:
            key = cache.get(price)
            if key is None:
                key = cache[price] = price_key(price, negate)
            table[key] = (price, size)  # a repeated price: the last one counts
        self.keys = sorted(k for k, (_, size) in table.items() if not is_zero(size))
        self.frags = [f"{table[k][0]}:{table[k][1]}" for k in self.keys]

    def apply(self, updates: Iterable[Level]) -> None:
        keys, frags, cache, negate = self.keys, self.frags, self.cache, self.negate
        cached, bisect = cache.get, bisect_left
        for price, size in updates:
            key = cached(price)
            if key is None:
                if len(cache) >= KEY_CACHE_SIZE:
                    cache.clear()
                key = cache[price] = price_key(price, negate)
            i = bisect(keys, key)
            found = i < len(keys) and keys[i] == key
            # The usual zero spellings are one set lookup; the rest go the long way.
            if size in _ZEROS or (size[0] in "0." and is_zero(size)):
                if found:
                    del keys[i], frags[i]
            elif found:
                frags[i] = f"{price}:{size}"
            else:
                keys.insert(i, key)
                frags.insert(i, f"{price}:{size}")

    def top_frags(self, depth: int | None) -> list[str]:
        """The best ``depth`` fragments (all for ``None``), best first."""
        if depth is None:
            return self.frags[::-1]
        return self.frags[: -depth - 1 : -1] if depth > 0 else []

    def top(self, depth: int | None) -> tuple[Level, ...]:
        return tuple(map(_level, self.top_frags(depth)))


@attrs.define(eq=False)
class OrderBook:
    """Bids and asks by price, best first, each level as the venue last wrote it.

    A level whose size is zero is removed (removing an absent level is a no-op, as
    both Binance and OKX documentation allow). The book trusts its input to be valid
    decimal text, which the venue parsers guarantee.

    Each side is a sorted list of exact price keys (:func:`price_key`) searched with
    :mod:`bisect`, and a parallel list of the levels as ``"price:size"`` text. For
    books of up to a few thousand levels this is several times as fast per change as
    ``sortedcontainers.SortedDict`` keyed by Decimal (whose ``add``/``remove`` run in
    Python and whose Decimal comparisons cost ~40 ns each), which is what keeps an OKX
    update with its checksum within budget (``bench/bench_books.py``).
    """

    _bids: _Side = attrs.field(init=False, factory=lambda: _Side(negate=False))
    _asks: _Side = attrs.field(init=False, factory=lambda: _Side(negate=True))

    @property
    def bid_count(self) -> int:
        """Bid levels in the book."""
        return len(self._bids.keys)

    @property
    def ask_count(self) -> int:
        """Ask levels in the book."""
        return len(self._asks.keys)

    def clear(self) -> None:
        """Remove every level."""
        self._bids.clear()
        self._asks.clear()

    def load(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace the whole book with these levels (zero sizes are skipped)."""
        self._bids.load(bids)
        self._asks.load(asks)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Set each level's size; a zero size removes the level."""
        self._bids.apply(bids)
        self._asks.apply(asks)

    def top(self, depth: int | None = None) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """The best ``depth`` levels of each side (all of them for ``None``), best first."""
        return self.top_bids(depth), self.top_asks(depth)

    def top_bids(self, depth: int | None = None) -> tuple[Level, ...]:
        """The best ``depth`` bids, highest first."""
        return self._bids.top(depth)

    def top_asks(self, depth: int | None = None) -> tuple[Level, ...]:
        """The best ``depth`` asks, lowest first."""
        return self._asks.top(depth)

    def checksum_text(self, depth: int = CHECKSUM_DEPTH) -> str:
        """The OKX checksum string of this book (see :func:`checksum_text`)."""
        bids = self._bids.top_frags(depth)
        asks = self._asks.top_frags(depth)
        common = min(len(bids), len(asks))
        parts = [""] * (2 * common)
        if len(bids) == len(asks):  # the usual case: interleave whole lists
            parts[0::2] = bids
            parts[1::2] = asks
        else:  # one side is shorter: its missing levels are left out
            parts[0::2] = bids[:common]
            parts[1::2] = asks[:common]
            parts += bids[common:] or asks[common:]
        return ":".join(parts)

    def checksum(self, depth: int = CHECKSUM_DEPTH) -> int:
        """The OKX checksum of this book: signed CRC32 of :meth:`checksum_text`."""
        return signed_crc32(self.checksum_text(depth))
