"""The book assembler follows the venues' documented sync procedures and resyncs one book."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_trio.events import BookDelta, BookSnapshot, BookState, BookStatus, Kind, Level
from meltica_trio.providers import (
    BookAction,
    BookAssembler,
    DepthDiff,
    DepthSnapshot,
    Publish,
    RequestSnapshot,
    SyncRules,
    book_checksum,
)


def bdiff(
    first: int, last: int, bids: tuple[Level, ...] = (), asks: tuple[Level, ...] = ()
) -> DepthDiff:
    return DepthDiff(
        instrument="BNB-BTC", first_seq=first, last_seq=last, prev_seq=None, bids=bids, asks=asks
    )


def bsnap(seq: int, bids: tuple[Level, ...] = (), asks: tuple[Level, ...] = ()) -> DepthSnapshot:
    return DepthSnapshot(instrument="BNB-BTC", seq=seq, bids=bids, asks=asks)


def binance() -> BookAssembler:
    book = BookAssembler("binance", "BNB-BTC", SyncRules.BINANCE)
    book.start(now=0.0)
    return book


def okx(instrument: str = "BTC-USDT") -> BookAssembler:
    book = BookAssembler("okx", instrument, SyncRules.OKX)
    book.start(now=0.0)
    return book


def statuses(actions: list[BookAction]) -> list[BookState]:
    return [
        a.payload.state
        for a in actions
        if isinstance(a, Publish) and isinstance(a.payload, BookStatus)
    ]


def shape(actions: list[BookAction]) -> list[str]:
    """Each action as a word: ``status:live``, ``snapshot``, ``delta``, ``request``."""
    words = []
    for action in actions:
        if isinstance(action, RequestSnapshot):
            words.append("request")
        elif isinstance(action.payload, BookStatus):
            words.append(f"status:{action.payload.state.value}")
        elif isinstance(action.payload, BookSnapshot):
            words.append("snapshot")
        else:
            words.append("delta")
    return words


# -- Binance ----------------------------------------------------------------------


def test_start_publishes_syncing_and_requests_a_snapshot_under_binance_rules() -> None:
    book = BookAssembler("binance", "BNB-BTC", SyncRules.BINANCE)
    assert shape(book.start()) == ["status:syncing", "request"]
    assert shape(BookAssembler("okx", "BTC-USDT", SyncRules.OKX).start()) == ["status:syncing"]


def test_binance_documented_procedure_buffers_drops_bridges_then_goes_live() -> None:
    # Spot docs: buffer; drop u <= lastUpdateId; first applied has U <= lastUpdateId+1 <= u.
    book = binance()
    assert book.on_diff(bdiff(101, 105, bids=(("1.0", "5"),))) == []  # in the snapshot
    assert book.on_diff(bdiff(106, 112, bids=(("1.1", "2"),))) == []  # bridges 111
    assert book.on_diff(bdiff(113, 113, asks=(("1.3", "7"),))) == []
    actions = book.on_snapshot(bsnap(110, bids=(("1.0", "5"), ("0.9", "1")), asks=(("1.2", "3"),)))
    assert shape(actions) == ["status:live", "snapshot"]
    live, snapshot = actions
    assert isinstance(live, Publish)
    assert live.payload == BookStatus(
        state=BookState.LIVE, reason="snapshot applied", last_seq=113
    )
    assert isinstance(snapshot, Publish)
    assert snapshot.seq == 113
    assert snapshot.payload == BookSnapshot(
        bids=(("1.1", "2"), ("1.0", "5"), ("0.9", "1")), asks=(("1.2", "3"), ("1.3", "7"))
    )
    stats = book.statistics()
    assert (stats.applied, stats.dropped, stats.gaps, stats.state) == (2, 1, 0, BookState.LIVE)


def test_binance_first_event_covering_the_snapshot_id_is_applied() -> None:
    # "first update U: 10, u: 15; depth snapshot: 12 - you need to apply that update."
    book = binance()
    book.on_snapshot(bsnap(12, bids=(("5", "1"),)))
    actions = book.on_diff(bdiff(10, 15, bids=(("5", "2"),)))
    assert shape(actions) == ["delta"]
    (delta,) = actions
    assert isinstance(delta, Publish)
    assert delta.seq == 15
    assert delta.payload == BookDelta(bids=(("5", "2"),), asks=(), prev_seq=12)


def test_binance_deltas_chain_prev_seq_to_the_previous_seq() -> None:
    book = binance()
    book.on_snapshot(bsnap(100))
    seqs = []
    for first, last in [(101, 103), (104, 104), (105, 110)]:
        (delta,) = book.on_diff(bdiff(first, last, bids=(("1", str(last)),)))
        assert isinstance(delta, Publish)
        assert isinstance(delta.payload, BookDelta)
        seqs.append((delta.payload.prev_seq, delta.seq))
    assert seqs == [(100, 103), (103, 104), (104, 110)]


def test_binance_no_book_data_before_live() -> None:
    book = binance()
    for i in range(5):
        assert book.on_diff(bdiff(10 * i + 1, 10 * i + 10)) == []
    assert book.snapshot() is None
    assert book.state is BookState.SYNCING
    assert book.statistics().buffered == 5


def test_binance_gap_resyncs_and_buffers_from_the_offending_diff() -> None:
    book = binance()
    book.on_snapshot(bsnap(100, bids=(("1", "1"),)))
    book.on_diff(bdiff(101, 102))
    actions = book.on_diff(bdiff(104, 105, bids=(("2", "1"),)))  # 103 is missing
    assert shape(actions) == ["status:resyncing", "request"]
    request = actions[1]
    assert isinstance(request, RequestSnapshot)
    assert "expected update 103, got 104..105" in request.reason
    assert book.snapshot() is None
    assert book.on_diff(bdiff(106, 107)) == []  # buffered, not published
    actions = book.on_snapshot(bsnap(104, bids=(("1", "1"),)))
    assert shape(actions) == ["status:live", "snapshot"]
    assert book.book.top_bids() == (("2", "1"), ("1", "1"))
    stats = book.statistics()
    assert (stats.gaps, stats.resyncs, stats.last_seq) == (1, 1, 107)


def test_binance_overlapping_diff_after_the_first_is_a_gap() -> None:
    book = binance()
    book.on_snapshot(bsnap(100))
    book.on_diff(bdiff(99, 105))
    assert shape(book.on_diff(bdiff(104, 108))) == ["status:resyncing", "request"]


def test_binance_first_diff_starting_after_snapshot_is_a_gap() -> None:
    book = binance()
    book.on_snapshot(bsnap(100))
    assert shape(book.on_diff(bdiff(102, 108))) == ["status:resyncing", "request"]


def test_binance_diff_already_in_the_book_is_ignored() -> None:
    book = binance()
    book.on_snapshot(bsnap(100))
    book.on_diff(bdiff(101, 105))
    assert book.on_diff(bdiff(104, 105)) == []
    assert book.statistics().dropped == 1
    assert book.state is BookState.LIVE


def test_binance_snapshot_older_than_buffered_diffs_is_refetched() -> None:
    book = binance()
    book.on_diff(bdiff(120, 125))
    actions = book.on_snapshot(bsnap(110))
    assert shape(actions) == ["request"]
    assert book.state is BookState.SYNCING
    assert shape(book.on_snapshot(bsnap(122))) == ["status:live", "snapshot"]
    assert book.last_seq == 125


def test_binance_gap_inside_the_buffer_resyncs_keeping_later_diffs() -> None:
    book = binance()
    for first, last in [(101, 105), (106, 108), (110, 112), (113, 113)]:
        book.on_diff(bdiff(first, last))
    assert shape(book.on_snapshot(bsnap(103))) == ["status:resyncing", "request"]
    assert book.statistics().buffered == 2
    assert shape(book.on_snapshot(bsnap(111))) == ["status:live", "snapshot"]
    assert book.last_seq == 113


def test_binance_buffer_overflow_drops_the_oldest() -> None:
    book = BookAssembler("binance", "BNB-BTC", SyncRules.BINANCE, max_buffered=3)
    for i in range(5):
        book.on_diff(bdiff(i + 1, i + 1))
    stats = book.statistics()
    assert (stats.buffered, stats.dropped) == (3, 2)
    assert shape(book.on_snapshot(bsnap(1))) == ["request"]  # 2 was dropped: too old


def test_binance_stale_snapshot_while_live_is_ignored() -> None:
    book = binance()
    book.on_snapshot(bsnap(100))
    book.on_diff(bdiff(101, 110))
    assert book.on_snapshot(bsnap(105)) == []
    assert book.last_seq == 110


def test_binance_newer_snapshot_while_live_is_republished() -> None:
    book = binance()
    book.on_snapshot(bsnap(100))
    assert shape(book.on_snapshot(bsnap(200, bids=(("3", "3"),)))) == ["snapshot"]
    assert book.book.top_bids() == (("3", "3"),)


def test_binance_snapshot_depth_limits_published_snapshots() -> None:
    book = BookAssembler("binance", "BNB-BTC", SyncRules.BINANCE, snapshot_depth=1)
    book.start()
    bids = (("3", "1"), ("2", "1"))
    actions = book.on_snapshot(bsnap(1, bids=bids))
    assert isinstance(actions[-1], Publish)
    assert actions[-1].payload == BookSnapshot(bids=(("3", "1"),), asks=())
    assert book.snapshot() == BookSnapshot(bids=bids, asks=())


def test_binance_records_without_update_ids_resync_rather_than_guess() -> None:
    book = binance()
    no_id = DepthSnapshot(instrument="BNB-BTC", seq=None, bids=(), asks=())
    assert shape(book.on_snapshot(no_id)) == ["status:resyncing", "request"]
    book.on_snapshot(bsnap(10))
    no_ids = DepthDiff(
        instrument="BNB-BTC", first_seq=None, last_seq=None, prev_seq=None, bids=(), asks=()
    )
    assert shape(book.on_diff(no_ids)) == ["status:resyncing", "request"]
    assert book.statistics().gaps == 1


# -- OKX --------------------------------------------------------------------------


def odiff(
    prev: int | None,
    seq: int | None,
    bids: tuple[Level, ...] = (),
    asks: tuple[Level, ...] = (),
    checksum: int | None = None,
    instrument: str = "BTC-USDT",
) -> DepthDiff:
    return DepthDiff(
        instrument=instrument,
        first_seq=seq,
        last_seq=seq,
        prev_seq=prev,
        bids=bids,
        asks=asks,
        checksum=checksum,
    )


def osnap(
    seq: int | None, bids: tuple[Level, ...], asks: tuple[Level, ...], instrument: str = "BTC-USDT"
) -> DepthSnapshot:
    return DepthSnapshot(
        instrument=instrument,
        seq=seq,
        bids=bids,
        asks=asks,
        checksum=book_checksum(bids, asks),
    )


BIDS = (("3366.1", "7"), ("3366", "6"))
ASKS = (("3366.8", "9"), ("3368", "8"))


def test_okx_documented_sequence_example_applies_heartbeat_and_reset() -> None:
    # OKX v5 "Sequence ID" example: snapshot -1/10, 10/15, keep-alive 15/15,
    # reset 15/3, then 3/5.
    book = okx()
    assert shape(book.on_snapshot(osnap(10, BIDS, ASKS))) == ["status:live", "snapshot"]
    after_15 = ((("3366.1", "8"), ("3366", "6")), ASKS)
    steps = [
        (odiff(10, 15, bids=(("3366.1", "8"),), checksum=book_checksum(*after_15)), ["delta"]),
        (odiff(15, 15, checksum=book_checksum(*after_15)), []),
        (
            odiff(15, 3, asks=(("3368", "0"),), checksum=book_checksum(after_15[0], ASKS[:1])),
            ["delta"],
        ),
        (odiff(3, 5, asks=(("3369", "1"),), checksum=None), ["delta"]),
    ]
    for diff, expected in steps:
        assert shape(book.on_diff(diff)) == expected
    stats = book.statistics()
    assert (stats.applied, stats.heartbeats, stats.seq_resets, stats.gaps) == (3, 1, 1, 0)
    assert (stats.checksum_ok, stats.checksum_failed, stats.checksum_skipped) == (4, 0, 1)
    assert book.last_seq == 5
    assert book.book.top_asks() == (("3366.8", "9"), ("3369", "1"))


def test_okx_delta_carries_prev_seq_id_and_checksum() -> None:
    book = okx()
    book.on_snapshot(osnap(10, BIDS, ASKS))
    checksum = book_checksum((("3366.2", "1"), *BIDS), ASKS)
    (delta,) = book.on_diff(odiff(10, 11, bids=(("3366.2", "1"),), checksum=checksum))
    assert isinstance(delta, Publish)
    assert delta.kind is Kind.BOOK_DELTA
    assert delta.seq == 11
    assert delta.payload == BookDelta(
        bids=(("3366.2", "1"),), asks=(), prev_seq=10, checksum=checksum
    )


def test_okx_prev_seq_mismatch_resyncs_and_drops_updates_until_snapshot() -> None:
    book = okx()
    book.on_snapshot(osnap(10, BIDS, ASKS))
    actions = book.on_diff(odiff(11, 12, bids=(("1", "1"),)))
    assert shape(actions) == ["status:resyncing", "request"]
    assert book.on_diff(odiff(12, 13)) == []
    assert shape(book.on_snapshot(osnap(20, BIDS, ASKS))) == ["status:live", "snapshot"]
    stats = book.statistics()
    assert (stats.gaps, stats.resyncs, stats.dropped, stats.snapshots) == (1, 1, 1, 2)


def test_okx_checksum_mismatch_resyncs_that_instrument_only() -> None:
    btc, uni = okx("BTC-USDT"), okx("UNI-USD-SWAP")
    btc.on_snapshot(osnap(1, BIDS, ASKS))
    uni.on_snapshot(osnap(1, BIDS, ASKS, instrument="UNI-USD-SWAP"))
    change = (("3366.1", "1"),)
    right = book_checksum((("3366.1", "1"), BIDS[1]), ASKS)
    wrong = book_checksum(BIDS, ASKS)  # the book before the change
    actions = btc.on_diff(odiff(1, 2, bids=change, checksum=wrong))
    assert shape(actions) == ["status:resyncing", "request"]
    request = actions[1]
    assert isinstance(request, RequestSnapshot)
    assert request.reason == f"checksum mismatch: venue {wrong}, book {right}"
    assert shape(
        uni.on_diff(odiff(1, 2, bids=change, checksum=right, instrument="UNI-USD-SWAP"))
    ) == ["delta"]
    assert (btc.state, uni.state) == (BookState.RESYNCING, BookState.LIVE)
    assert btc.statistics().checksum_failed == 1
    assert (uni.statistics().checksum_failed, uni.statistics().checksum_ok) == (0, 2)


def test_okx_snapshot_with_wrong_checksum_is_resynced() -> None:
    book = okx()
    snapshot = DepthSnapshot(instrument="BTC-USDT", seq=1, bids=BIDS, asks=ASKS, checksum=12345)
    assert shape(book.on_snapshot(snapshot)) == ["status:resyncing", "request"]
    assert book.snapshot() is None


def test_okx_zero_checksum_is_skipped_not_failed() -> None:
    # OKX fixes the deprecated checksum field at 0 from June 2026.
    book = okx()
    snapshot = DepthSnapshot(instrument="BTC-USDT", seq=1, bids=BIDS, asks=ASKS, checksum=0)
    assert shape(book.on_snapshot(snapshot)) == ["status:live", "snapshot"]
    assert shape(book.on_diff(odiff(1, 2, bids=(("1", "1"),), checksum=0))) == ["delta"]
    stats = book.statistics()
    assert (stats.checksum_ok, stats.checksum_failed, stats.checksum_skipped) == (0, 0, 2)


def test_okx_without_sequence_ids_relies_on_checksums() -> None:
    book = okx()
    book.on_snapshot(osnap(None, BIDS, ASKS))
    checksum = book_checksum(BIDS[:1], ASKS)
    (delta,) = book.on_diff(odiff(None, None, bids=(("3366", "0"),), checksum=checksum))
    assert isinstance(delta, Publish)
    assert delta.seq is None
    assert isinstance(delta.payload, BookDelta)
    assert delta.payload.prev_seq is None


def test_okx_updates_before_any_snapshot_are_dropped() -> None:
    book = okx()
    assert book.on_diff(odiff(1, 2)) == []
    assert book.statistics().dropped == 1


# -- staleness and resync -----------------------------------------------------------


def test_live_book_goes_stale_after_quiet_period_and_live_again_on_update() -> None:
    book = BookAssembler("binance", "BNB-BTC", SyncRules.BINANCE, stale_after=5.0)
    book.start(now=0.0)
    book.on_snapshot(bsnap(100, bids=(("1", "1"),)), now=1.0)
    assert book.check_stale(5.9) == []
    assert statuses(book.check_stale(6.0)) == [BookState.STALE]
    assert book.check_stale(7.0) == []
    actions = book.on_diff(bdiff(101, 101, bids=(("2", "1"),)), now=8.0)
    assert shape(actions) == ["status:live", "snapshot"]
    assert isinstance(actions[1], Publish)
    assert actions[1].seq == 101


def test_okx_keep_alive_brings_a_stale_book_back() -> None:
    book = okx()
    book.on_snapshot(osnap(7, BIDS, ASKS))
    book.on_stale("connection quiet")
    assert shape(book.on_diff(odiff(7, 7))) == ["status:live", "snapshot"]


def test_syncing_book_does_not_go_stale() -> None:
    book = BookAssembler("binance", "BNB-BTC", SyncRules.BINANCE, stale_after=1.0)
    book.start()
    assert book.check_stale(0.0) == []
    assert book.check_stale(100.0) == []
    assert book.state is BookState.SYNCING


def test_on_stale_is_reported_once() -> None:
    book = binance()
    assert statuses(book.on_stale("socket closed")) == [BookState.STALE]
    assert book.on_stale("socket closed") == []


def test_stale_book_with_a_gap_resyncs() -> None:
    book = binance()
    book.on_snapshot(bsnap(100))
    book.on_stale("socket closed")
    assert shape(book.on_diff(bdiff(150, 151))) == ["status:resyncing", "request"]


def test_resync_discards_the_book_and_requests_a_snapshot() -> None:
    book = binance()
    book.on_snapshot(bsnap(100, bids=(("1", "1"),)))
    assert shape(book.resync("reconnected")) == ["status:resyncing", "request"]
    assert shape(book.resync("still waiting")) == ["request"]
    stats = book.statistics()
    assert (stats.resyncs, stats.bid_levels, stats.snapshot_requests) == (2, 0, 3)


# -- properties: any contiguous diff sequence equals a reference book ---------------

prices = st.integers(min_value=1, max_value=40).map(lambda i: f"{i / 2:.1f}")
sizes = st.sampled_from(["0", "0.00", "1", "2.5", "10"])
level_lists = st.lists(st.tuples(prices, sizes), max_size=5).map(tuple)


def reference_apply(side: dict[Decimal, Level], levels: tuple[Level, ...]) -> None:
    for price, size in levels:
        if Decimal(size) == 0:
            side.pop(Decimal(price), None)
        else:
            side[Decimal(price)] = (price, size)


def reference_top(bids: dict[Decimal, Level], asks: dict[Decimal, Level]) -> tuple[object, ...]:
    return (
        tuple(bids[k] for k in sorted(bids, reverse=True)),
        tuple(asks[k] for k in sorted(asks)),
    )


@given(
    level_lists,
    level_lists,
    st.lists(st.tuples(st.integers(1, 4), level_lists, level_lists), max_size=25),
)
def test_binance_any_contiguous_diffs_equal_reference_book(
    snap_bids: tuple[Level, ...],
    snap_asks: tuple[Level, ...],
    diffs: list[tuple[int, tuple[Level, ...], tuple[Level, ...]]],
) -> None:
    book = binance()
    bids: dict[Decimal, Level] = {}
    asks: dict[Decimal, Level] = {}
    reference_apply(bids, snap_bids)
    reference_apply(asks, snap_asks)
    book.on_snapshot(bsnap(1000, snap_bids, snap_asks))
    last = 1000
    for width, d_bids, d_asks in diffs:
        (delta,) = book.on_diff(bdiff(last + 1, last + width, d_bids, d_asks))
        assert isinstance(delta, Publish)
        assert isinstance(delta.payload, BookDelta)
        assert (delta.payload.prev_seq, delta.seq) == (last, last + width)
        last += width
        reference_apply(bids, d_bids)
        reference_apply(asks, d_asks)
    assert book.book.top() == reference_top(bids, asks)
    assert book.statistics().gaps == 0


@settings(max_examples=50)
@given(
    level_lists,
    level_lists,
    st.lists(st.tuples(level_lists, level_lists), min_size=1, max_size=20),
    st.data(),
)
def test_okx_any_update_sequence_verifies_every_checksum_and_equals_reference(
    snap_bids: tuple[Level, ...],
    snap_asks: tuple[Level, ...],
    updates: list[tuple[tuple[Level, ...], tuple[Level, ...]]],
    data: st.DataObject,
) -> None:
    book = okx()
    bids: dict[Decimal, Level] = {}
    asks: dict[Decimal, Level] = {}
    reference_apply(bids, snap_bids)
    reference_apply(asks, snap_asks)
    snapshot = DepthSnapshot(
        instrument="BTC-USDT",
        seq=0,
        bids=snap_bids,
        asks=snap_asks,
        checksum=book_checksum(*reference_top(bids, asks)),  # type: ignore[arg-type]
    )
    book.on_snapshot(snapshot)
    seq = 0
    for d_bids, d_asks in updates:
        step = data.draw(st.integers(1, 9))
        reference_apply(bids, d_bids)
        reference_apply(asks, d_asks)
        checksum = book_checksum(*reference_top(bids, asks))  # type: ignore[arg-type]
        book.on_diff(odiff(seq, seq + step, d_bids, d_asks, checksum=checksum or None))
        seq += step
    stats = book.statistics()
    assert stats.checksum_failed == 0
    assert stats.resyncs == 0
    assert book.book.top() == reference_top(bids, asks)


@given(st.integers(2, 30), st.data())
def test_binance_a_missing_diff_is_always_one_gap_and_never_published_across(
    count: int, data: st.DataObject
) -> None:
    missing = data.draw(st.integers(1, count - 1))
    book = binance()
    book.on_snapshot(bsnap(0))
    actions: list[BookAction] = []
    for i in range(1, count + 1):
        if i != missing:
            actions += book.on_diff(bdiff(i, i, bids=(("1", str(i)),)))
    published = [a.seq for a in actions if isinstance(a, Publish) and a.kind is Kind.BOOK_DELTA]
    assert published == list(range(1, missing))
    stats = book.statistics()
    assert (stats.gaps, stats.resyncs, stats.state) == (1, 1, BookState.RESYNCING)
    assert stats.buffered == count - missing


@pytest.mark.parametrize("rules", list(SyncRules))
def test_statistics_start_at_zero(rules: SyncRules) -> None:
    stats = BookAssembler("p", "X-Y", rules).statistics()
    assert stats.state is BookState.SYNCING
    assert stats.applied == stats.gaps == stats.resyncs == stats.checksum_ok == 0
