"""Acceptance on real venue captures: every Binance book LIVE with no gap, all 290 OKX
checksums verified; damage to one book resyncs that book and leaves the others alone."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from meltica_trio.events import BookState, Level
from meltica_trio.providers import (
    CaptureKind,
    CaptureRecord,
    ReplayResult,
    format_replay_summary,
    read_capture,
    replay_capture,
    replay_records,
)

# Copies of shared/fixtures, so these tests never skip.
DATA = Path(__file__).parent / "data"
BINANCE = DATA / "binance-spot-capture.jsonl"
OKX = DATA / "okx-capture.jsonl"
BINANCE_BOOKS = ["binance:NKNUSDT", "binance:BLZETH", "binance:LRCBTC", "binance:RUNEEUR"]
OKX_BOOKS = ["okx:BTC-USD-220527", "okx:UNI-USD-SWAP", "okx:BTC-USDT"]
Edit = Callable[[list[CaptureRecord]], list[CaptureRecord]]


@pytest.fixture(scope="module")
def binance() -> ReplayResult:
    return replay_capture(BINANCE, "binance", depth=5)


@pytest.fixture(scope="module")
def okx() -> ReplayResult:
    return replay_capture(OKX, "okx", depth=5)


def replay_edited(path: Path, venue: str, edit: Edit) -> ReplayResult:
    records = edit(list(read_capture(path)))
    return replay_records(records, venue, 5)  # type: ignore[arg-type]


def books_where(
    records: list[CaptureRecord], channel: str, match: Callable[[dict[str, object]], bool]
) -> list[int]:
    """Indexes of ``ws`` records whose frame is on ``channel`` and matches."""
    return [
        i
        for i, r in enumerate(records)
        if r.kind is CaptureKind.WS
        and isinstance(r.data, dict)
        and channel in str(r.data.get("stream", r.data.get("arg", "")))
        and match(r.data)
    ]


# -- the two captures as recorded -----------------------------------------------------


def test_binance_capture_all_four_books_end_live_without_gaps(binance: ReplayResult) -> None:
    assert list(binance.books) == BINANCE_BOOKS
    for book in binance.books.values():
        stats = book.statistics
        assert stats.state is BookState.LIVE
        assert (stats.gaps, stats.resyncs, stats.checksum_failed) == (0, 0, 0)
    applied = {key: book.statistics.applied for key, book in binance.books.items()}
    assert applied == {
        "binance:NKNUSDT": 149,
        "binance:BLZETH": 9,
        "binance:LRCBTC": 13,
        "binance:RUNEEUR": 1,
    }
    assert (binance.trades, binance.tickers, binance.klines) == (2, 84, 2)
    assert (binance.decode_errors, binance.records) == (0, 270)
    assert binance.snapshot_requests == 4  # one initial request per book


def test_okx_capture_verifies_exactly_290_checksums(okx: ReplayResult) -> None:
    assert list(okx.books) == OKX_BOOKS
    assert sum(b.statistics.checksum_ok for b in okx.books.values()) == 290
    assert sum(b.statistics.checksum_failed for b in okx.books.values()) == 0
    for book in okx.books.values():
        assert book.status is BookState.LIVE
        assert (book.statistics.gaps, book.statistics.resyncs) == (0, 0)
    assert sum(b.statistics.applied for b in okx.books.values()) == 287
    assert (okx.trades, okx.tickers, okx.control_frames, okx.decode_errors) == (74, 28, 18, 0)


def reference_binance_books() -> dict[str, tuple[tuple[Level, ...], tuple[Level, ...]]]:
    """Each Binance book rebuilt naively: its REST snapshot, then every later diff."""
    snapshots: dict[str, dict[str, object]] = {}
    diffs: dict[str, list[dict[str, object]]] = {}
    for record in read_capture(BINANCE):
        if record.kind is CaptureKind.REST:
            symbol = parse_qs(urlsplit(record.url).query)["symbol"][0]
            snapshots[symbol] = record.data  # type: ignore[assignment]
        elif record.kind is CaptureKind.WS and "@depth" in record.data["stream"]:  # type: ignore[index]
            data = record.data["data"]  # type: ignore[index]
            diffs.setdefault(data["s"], []).append(data)
    books = {}
    for symbol, snap in snapshots.items():
        sides: dict[str, dict[Decimal, Level]] = {"b": {}, "a": {}}
        for key, levels in (("b", snap["bids"]), ("a", snap["asks"])):
            sides[key].update({Decimal(p): (p, s) for p, s in levels})  # type: ignore[attr-defined]
        for diff in diffs[symbol]:
            if diff["u"] <= snap["lastUpdateId"]:  # type: ignore[operator]
                continue
            for key in ("b", "a"):
                for p, s in diff[key]:  # type: ignore[attr-defined]
                    if Decimal(s) == 0:
                        sides[key].pop(Decimal(p), None)
                    else:
                        sides[key][Decimal(p)] = (p, s)
        bids = tuple(sides["b"][k] for k in sorted(sides["b"], reverse=True))
        asks = tuple(sides["a"][k] for k in sorted(sides["a"]))
        books[f"binance:{symbol}"] = (bids, asks)
    return books


def test_binance_books_equal_a_naive_rebuild_to_the_last_level() -> None:
    result = replay_capture(BINANCE, "binance", depth=100_000)
    reference = reference_binance_books()
    assert set(reference) == set(result.books)
    for key, (bids, asks) in reference.items():
        assert (result.books[key].bids, result.books[key].asks) == (bids, asks)


def test_report_is_the_documented_json_shape(binance: ReplayResult, okx: ReplayResult) -> None:
    book = binance.books["binance:NKNUSDT"].as_dict()
    assert list(book) == [
        "instrument",
        "status",
        "bids",
        "asks",
        "applied",
        "gaps",
        "resyncs",
        "checksum_ok",
        "checksum_failed",
    ]
    assert book["instrument"] == "NKN-USDT"
    assert book["status"] == "live"
    assert book["bids"] == [
        ["0.35270000", "9602.00000000"],
        ["0.35260000", "2829.00000000"],
        ["0.35250000", "1850.00000000"],
        ["0.35240000", "3421.00000000"],
        ["0.35220000", "7231.00000000"],
    ]
    okx_book = okx.books["okx:BTC-USDT"].as_dict()
    assert okx_book["asks"] == [
        ["30236.2", "0.001"],
        ["30243.9", "0.0002"],
        ["30246.5", "0.00087743"],
        ["30246.6", "0.16"],
        ["30249", "0.06179"],
    ]
    assert orjson.loads(orjson.dumps(okx.as_dict()))["books"]["okx:BTC-USDT"] == okx_book


def test_summary_names_every_book_and_its_state(binance: ReplayResult, okx: ReplayResult) -> None:
    text = format_replay_summary(binance)
    assert text.startswith("replay of binance-spot-capture.jsonl as binance: 270 records")
    for key in BINANCE_BOOKS:
        assert f"{key} (" in text
    assert "0.35270000" in text
    okx_text = format_replay_summary(okx)
    assert "checksums 98 ok / 0 failed" in okx_text
    assert all(key in okx_text for key in OKX_BOOKS)


# -- damage resyncs only the damaged book ---------------------------------------------


def without(index: int) -> Edit:
    return lambda records: records[:index] + records[index + 1 :]


def assert_others_unaffected(result: ReplayResult, baseline: ReplayResult, damaged: str) -> None:
    for key, book in result.books.items():
        if key != damaged:
            assert book.as_dict() == baseline.books[key].as_dict(), key


def test_missing_binance_diff_resyncs_that_symbol_only(binance: ReplayResult) -> None:
    records = list(read_capture(BINANCE))
    nkn = books_where(records, "nknusdt@depth", lambda d: True)
    result = replay_edited(BINANCE, "binance", without(nkn[len(nkn) // 2]))
    damaged = result.books["binance:NKNUSDT"].statistics
    assert (damaged.state, damaged.gaps, damaged.resyncs) == (BookState.RESYNCING, 1, 1)
    assert result.books["binance:NKNUSDT"].bids == ()
    assert result.snapshot_requests == binance.snapshot_requests + 1
    assert_others_unaffected(result, binance, "binance:NKNUSDT")


def test_corrupted_okx_checksum_resyncs_that_instrument_only(okx: ReplayResult) -> None:
    def corrupt(records: list[CaptureRecord]) -> list[CaptureRecord]:
        updates = books_where(records, "books", lambda d: d.get("action") == "update")
        target = next(i for i in updates if records[i].data["arg"]["instId"] == "BTC-USDT")  # type: ignore[index]
        data = copy.deepcopy(records[target].data)
        data["data"][0]["checksum"] += 1  # type: ignore[index]
        records[target] = CaptureRecord(
            records[target].t, CaptureKind.WS, records[target].url, data
        )
        return records

    result = replay_edited(OKX, "okx", corrupt)
    damaged = result.books["okx:BTC-USDT"].statistics
    assert (damaged.state, damaged.checksum_failed, damaged.resyncs) == (BookState.RESYNCING, 1, 1)
    assert damaged.checksum_ok == 1  # the snapshot, before the corrupted update
    assert_others_unaffected(result, okx, "okx:BTC-USDT")


def test_missing_okx_update_fails_the_next_checksum_of_that_instrument(okx: ReplayResult) -> None:
    records = list(read_capture(OKX))
    updates = books_where(records, "books", lambda d: d.get("action") == "update")
    uni = [i for i in updates if records[i].data["arg"]["instId"] == "UNI-USD-SWAP"]  # type: ignore[index]
    result = replay_edited(OKX, "okx", without(uni[10]))
    damaged = result.books["okx:UNI-USD-SWAP"].statistics
    assert (damaged.state, damaged.checksum_failed, damaged.resyncs) == (BookState.RESYNCING, 1, 1)
    assert_others_unaffected(result, okx, "okx:UNI-USD-SWAP")


def test_malformed_frame_is_counted_and_replay_goes_on(binance: ReplayResult) -> None:
    def insert_junk(records: list[CaptureRecord]) -> list[CaptureRecord]:
        junk = CaptureRecord(
            records[5].t, CaptureKind.WS, records[5].url, {"stream": "x", "data": 1}
        )
        return [*records[:5], junk, *records[5:]]

    result = replay_edited(BINANCE, "binance", insert_junk)
    assert result.decode_errors == 1
    assert result.decode_error_samples == ("record 6: data: expected an object, got int",)
    for key in BINANCE_BOOKS:
        assert result.books[key].as_dict() == binance.books[key].as_dict()


def test_rest_snapshot_from_any_host_is_delivered(binance: ReplayResult) -> None:
    def other_host(records: list[CaptureRecord]) -> list[CaptureRecord]:
        return [
            CaptureRecord(
                r.t, r.kind, r.url.replace("api.binance.com", "api3.binance.com"), r.data
            )
            if r.kind is CaptureKind.REST
            else r
            for r in records
        ]

    result = replay_edited(BINANCE, "binance", other_host)
    assert {k: b.as_dict() for k, b in result.books.items()} == {
        k: b.as_dict() for k, b in binance.books.items()
    }


def test_other_rest_records_are_ignored(binance: ReplayResult) -> None:
    def add_ticker_price(records: list[CaptureRecord]) -> list[CaptureRecord]:
        extra = CaptureRecord(records[1].t, CaptureKind.REST, "https://h/api/v3/time", {"x": 1})
        return [records[0], extra, *records[1:]]

    result = replay_edited(BINANCE, "binance", add_ticker_price)
    assert result.decode_errors == 0
    assert result.books["binance:NKNUSDT"].as_dict() == binance.books["binance:NKNUSDT"].as_dict()


def test_depth_snapshot_url_without_symbol_is_a_decode_error() -> None:
    def drop_symbol(records: list[CaptureRecord]) -> list[CaptureRecord]:
        return [
            CaptureRecord(r.t, r.kind, r.url.split("?")[0], r.data)
            if r.kind is CaptureKind.REST
            else r
            for r in records
        ]

    result = replay_edited(BINANCE, "binance", drop_symbol)
    assert result.decode_errors == 4
    assert {b.status for b in result.books.values()} == {BookState.SYNCING}


def test_reconnect_resyncs_every_book() -> None:
    def reconnect(records: list[CaptureRecord]) -> list[CaptureRecord]:
        reopen = CaptureRecord(records[-1].t, CaptureKind.WS_OPEN, records[0].url, None)
        return [*records, reopen]

    result = replay_edited(BINANCE, "binance", reconnect)
    assert {b.status for b in result.books.values()} == {BookState.RESYNCING}
    assert all(b.statistics.resyncs == 1 for b in result.books.values())


def test_quiet_capture_time_marks_books_stale() -> None:
    records = list(read_capture(BINANCE))
    result = replay_records(records, "binance", stale_after=5.0)
    states = {key: book.status for key, book in result.books.items()}
    # BLZETH's last depth update is 10 s before the end of the capture; the others' < 2 s.
    assert states == {
        "binance:NKNUSDT": BookState.LIVE,
        "binance:BLZETH": BookState.STALE,
        "binance:LRCBTC": BookState.LIVE,
        "binance:RUNEEUR": BookState.LIVE,
    }


def test_unknown_venue_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown venue"):
        replay_records([], "kraken")  # type: ignore[arg-type]
