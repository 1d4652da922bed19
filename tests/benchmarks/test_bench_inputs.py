"""The benchmarks' inputs: captures found where the project keeps them, peers checked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from meltica_trio.benchmarks._book_peer import (
    apply_okx,
    binance_applier,
    final_okx_books,
    new_book,
)
from meltica_trio.benchmarks._books import binance_books, okx_books
from meltica_trio.benchmarks._peers import find_peer
from meltica_trio.benchmarks._tape import (
    BINANCE_CAPTURE,
    FIXTURES_ENV,
    OKX_CAPTURE,
    Tape,
    find_fixtures,
)

DATA = Path(__file__).parents[1] / "providers" / "data"


def test_fixtures_come_from_the_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FIXTURES_ENV, str(DATA))
    assert find_fixtures() == DATA


def test_missing_fixtures_name_every_place_tried(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        find_fixtures(tmp_path)


def test_tape_replays_real_trades_with_a_sequence_per_instrument() -> None:
    tape = Tape.from_capture(DATA / BINANCE_CAPTURE)
    cursor = tape.cursor()
    drawn = [next(cursor) for _ in range(len(tape.trades) * 2)]

    for instrument in tape.instruments:
        seqs = [seq for i, _, seq in drawn if i == instrument]
        assert seqs == list(range(1, len(seqs) + 1))
    assert all("-" in instrument for instrument in tape.instruments)


def test_a_capture_without_trades_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"t": 1.0, "kind": "ws", "data": {"data": {"e": "depthUpdate"}}}\n')
    with pytest.raises(ValueError, match="no aggTrade"):
        Tape.from_capture(empty)


def test_cryptofeeds_book_agrees_with_every_okx_checksum_and_binance_sequence() -> None:
    pytest.importorskip("order_book")
    okx, _ = okx_books(DATA / OKX_CAPTURE)
    binance, _ = binance_books(DATA / BINANCE_CAPTURE)

    # apply_okx raises on any mismatch, binance_applier on any gap: none in the captures.
    assert len(final_okx_books(okx)) == len(okx) == 3
    for _, snapshot, diffs in binance:
        apply, book = binance_applier(snapshot.seq or 0), new_book(snapshot, None)
        for diff in diffs:
            apply(book, diff)
        assert len(book.bids) > 0


def test_a_binance_gap_or_okx_mismatch_is_an_error() -> None:
    pytest.importorskip("order_book")
    okx, _ = okx_books(DATA / OKX_CAPTURE)
    binance, _ = binance_books(DATA / BINANCE_CAPTURE)
    _, snapshot, diffs = next(b for b in binance if len(b[2]) > 2)
    apply = binance_applier(snapshot.seq or 0)
    book = new_book(snapshot, None)
    apply(book, diffs[0])
    with pytest.raises(RuntimeError, match="gap"):
        apply(book, diffs[2])
    _, okx_snapshot, okx_diffs = okx[0]
    book = new_book(okx_snapshot, "OKX")
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        apply_okx(book, okx_diffs[1])


def test_a_peer_turned_off_or_absent_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_peer("order_book", without={"order_book"}).missing == "turned off with --without"
    monkeypatch.setitem(sys.modules, "order_book", None)
    absent = find_peer("order_book")
    assert not absent.available
    assert "pip install 'meltica-trio[bench]'" in (absent.missing or "")
