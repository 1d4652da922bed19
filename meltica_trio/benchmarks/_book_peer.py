"""The same book work done the way cryptofeed's feed handler does it, for comparison.

cryptofeed keeps each L2 book in the ``order_book`` C extension (its ``OrderBook`` type
wraps one, made with ``checksum_format`` set to the exchange id, so ``"OKX"`` for OKX).
On an update its handlers turn every level's price and size into ``Decimal``, delete the
price when the size is zero (if the book has it) and set it otherwise; for OKX they then
compare ``book.checksum()`` with the update's checksum (as unsigned 32 bits). For Binance
they check the diff's ``U``/``u`` against the last update id first. That is what these
functions do, on the same parsed diffs our assembler gets; the feed handler's asyncio
machinery and callbacks are left out, as our pipeline's publishing is in our cases.

Each case mirrors one of ours in :mod:`._books`: a fresh book per round with its snapshot
loaded untimed, then every diff applied in order and timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from meltica_trio.benchmarks._peers import order_book_module
from meltica_trio.events import Level
from meltica_trio.providers import DepthDiff, DepthSnapshot

Book = tuple[str, DepthSnapshot, list[DepthDiff]]
"""(instrument, snapshot, the diffs after it) for one book."""
OKX_FORMAT: Final = "OKX"
SIDES: Final = ("bid", "ask")


def new_book(snapshot: DepthSnapshot, checksum_format: str | None) -> Any:
    """An ``order_book.OrderBook`` holding ``snapshot``, as cryptofeed builds one."""
    book = order_book_module().OrderBook(
        max_depth=0, checksum_format=checksum_format, max_depth_strict=False
    )
    book.bids = {Decimal(price): Decimal(size) for price, size in snapshot.bids}
    book.asks = {Decimal(price): Decimal(size) for price, size in snapshot.asks}
    return book


def apply_levels(book: Any, diff: DepthDiff) -> None:
    """Every changed level into ``book``: size zero deletes, anything else sets."""
    levels: tuple[tuple[Level, ...], tuple[Level, ...]] = (diff.bids, diff.asks)
    for side_name, changes in zip(SIDES, levels, strict=True):
        side = book[side_name]
        for price_text, size_text in changes:
            price, size = Decimal(price_text), Decimal(size_text)
            if size == 0:
                if price in side:
                    del side[price]
            else:
                side[price] = size


def binance_applier(last_update_id: int) -> Callable[[Any, DepthDiff], None]:
    """Applies Binance diffs after a snapshot at ``last_update_id``, checking continuity."""
    last = [last_update_id]
    first = [True]

    def apply(book: Any, diff: DepthDiff) -> None:
        start, end = diff.first_seq, diff.last_seq
        if start is None or end is None:
            raise RuntimeError(f"diff without update ids: {diff!r}")
        if end <= last[0]:
            return
        expected = last[0] + 1
        if (first[0] and not start <= expected <= end) or (not first[0] and start != expected):
            raise RuntimeError(f"gap: expected {expected}, got {start}..{end}")
        first[0] = False
        apply_levels(book, diff)
        last[0] = end

    return apply


def apply_okx(book: Any, diff: DepthDiff) -> None:
    """An OKX update, then its checksum compared with the venue's."""
    apply_levels(book, diff)
    if diff.checksum is not None and book.checksum() != diff.checksum & 0xFFFFFFFF:
        raise RuntimeError(f"checksum mismatch on {diff.instrument}")


def time_binance(books: list[Book], rounds: int) -> tuple[int, int]:
    """(ns spent applying, diffs applied) over ``rounds`` fresh books per instrument."""
    spent = fed = 0
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for _, snapshot, diffs in books:
            book = new_book(snapshot, None)
            apply = binance_applier(snapshot.seq or 0)
            start = clock()
            for diff in diffs:
                apply(book, diff)
            spent += clock() - start
            fed += len(diffs)
    return spent, fed


def time_okx(books: list[Book], rounds: int) -> tuple[int, int]:
    """(ns spent applying and checking, updates applied) over ``rounds`` fresh books."""
    spent = fed = 0
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for _, snapshot, diffs in books:
            book = new_book(snapshot, OKX_FORMAT)
            start = clock()
            for diff in diffs:
                apply_okx(book, diff)
            spent += clock() - start
            fed += len(diffs)
    return spent, fed


def checksum(book: Any) -> object:
    """The peer book's checksum of its top 25 levels per side (OKX format)."""
    return book.checksum()


def final_okx_books(books: list[Book]) -> list[Any]:
    """Each OKX book as it stands after the capture, in the peer's structure."""
    out = []
    for _, snapshot, diffs in books:
        book = new_book(snapshot, OKX_FORMAT)
        for diff in diffs:
            apply_okx(book, diff)
        out.append(book)
    return out
