"""Orderer: per-stream ordering rules, and properties of each rule under Hypothesis.

The release callback used here recycles each event as soon as it has noted it, so in
debug mode any touch of an event after it was released (or dropped) raises.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from meltica_trio import BookDelta, BookSnapshot, Event, EventPool, Kind, Recycler
from meltica_trio.dispatcher import Orderer

_PROVIDER: Final = "okx"
_BTC: Final = "BTC-USDT"
_ETH: Final = "ETH-USDT"
_WINDOW: Final = 4
_LATENESS: Final = 0.5
_TTL: Final = 60.0
_CRITICAL: Final = (Kind.EXEC_REPORT, Kind.CONTROL_ACK, Kind.CONTROL_RESULT, Kind.BOOK_STATUS)


class _Out(NamedTuple):
    """What the release callback saw of one released event."""

    kind: Kind
    provider: str
    instrument: str
    seq: int | None
    prev_seq: int | None
    event_id: int


class _Sink:
    """The release callback: notes each event, then recycles it at once."""

    def __init__(self, recycler: Recycler) -> None:
        self.recycler = recycler
        self.out: list[_Out] = []

    def __call__(self, event: Event) -> None:
        payload = event.payload
        prev = payload.prev_seq if isinstance(payload, BookDelta) else None
        self.out.append(
            _Out(event.kind, event.provider, event.instrument, event.seq, prev, event.event_id)
        )
        self.recycler.recycle(event)

    def seqs(self, kind: Kind | None = None) -> list[int | None]:
        return [o.seq for o in self.out if kind is None or o.kind is kind]


class _Gaps:
    """The ``on_gap`` callback: records (provider, instrument, reason)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, provider: str, instrument: str, reason: str) -> None:
        self.calls.append((provider, instrument, reason))


class _Rig(NamedTuple):
    orderer: Orderer
    sink: _Sink
    gaps: _Gaps
    pool: EventPool[Event]


def _rig(
    recycler: Recycler,
    *,
    window: int = _WINDOW,
    max_lateness: float = _LATENESS,
    idle_ttl: float = _TTL,
) -> _Rig:
    gaps = _Gaps()
    orderer = Orderer(recycler, gaps, window=window, max_lateness=max_lateness, idle_ttl=idle_ttl)
    pool = EventPool(Event, recycler=recycler, capacity=1024, name="ordering-test")
    return _Rig(orderer, _Sink(recycler), gaps, pool)


@pytest.fixture
def rig(recycler: Recycler) -> _Rig:
    return _rig(recycler)


def _event(
    pool: EventPool[Event],
    kind: Kind,
    seq: int | None,
    *,
    prev_seq: int | None = None,
    provider: str = _PROVIDER,
    instrument: str = _BTC,
    ingest_ts: int = 0,
    event_id: int = 0,
) -> Event:
    event = pool.acquire_nowait()
    event.kind = kind
    event.provider = provider
    event.instrument = instrument
    event.seq = seq
    event.ingest_ts = ingest_ts
    event.event_id = event_id
    if kind is Kind.BOOK_DELTA:
        event.payload = BookDelta(bids=(), asks=(), prev_seq=prev_seq)
    elif kind is Kind.BOOK_SNAPSHOT:
        event.payload = BookSnapshot(bids=(), asks=())
    return event


def _admit(rig: _Rig, events: Iterable[Event], now: float = 0.0) -> None:
    for event in events:
        rig.orderer.admit(event, now, rig.sink)


def _trades(
    rig: _Rig,
    seqs: Iterable[int],
    now: float = 0.0,
    *,
    provider: str = _PROVIDER,
    instrument: str = _BTC,
) -> None:
    _admit(
        rig,
        (_event(rig.pool, Kind.TRADE, s, provider=provider, instrument=instrument) for s in seqs),
        now,
    )


def _deltas(
    rig: _Rig,
    pairs: Iterable[tuple[int | None, int]],
    *,
    provider: str = _PROVIDER,
    instrument: str = _BTC,
) -> None:
    """Admit book deltas given as (prev_seq, seq) pairs."""
    _admit(
        rig,
        (
            _event(
                rig.pool, Kind.BOOK_DELTA, s, prev_seq=p, provider=provider, instrument=instrument
            )
            for p, s in pairs
        ),
    )


def _snapshot(rig: _Rig, seq: int, *, instrument: str = _BTC) -> None:
    _admit(rig, [_event(rig.pool, Kind.BOOK_SNAPSHOT, seq, instrument=instrument)])


def _anchor_trades(rig: _Rig, now: float = 0.0) -> None:
    """Start a trade stream at seq 1: its first event is held until its lateness passes."""
    _trades(rig, [1], now)
    rig.orderer.expire(now + _LATENESS, rig.sink)


# -- critical kinds ------------------------------------------------------------------


def test_critical_events_pass_straight_through_in_arrival_order_whatever_their_seq(
    rig: _Rig,
) -> None:
    seqs = [5, 5, 1, None, 3, 0]
    kinds = [_CRITICAL[i % 4] for i in range(len(seqs))]
    _admit(rig, (_event(rig.pool, k, s) for k, s in zip(kinds, seqs, strict=True)))

    assert rig.sink.seqs() == seqs
    assert [o.kind for o in rig.sink.out] == kinds
    stats = rig.orderer.statistics()
    assert (stats.released, stats.stale_dropped, stats.held, stats.streams) == (6, 0, 0, 0)


# -- contiguous: book deltas with prev_seq --------------------------------------------


def test_contiguous_deltas_are_released_while_prev_seq_follows_the_last_seq(
    rig: _Rig,
) -> None:
    _deltas(rig, [(9, 10), (10, 13), (13, 14)])

    assert rig.sink.seqs() == [10, 13, 14]  # the first delta of a book starts it
    assert rig.gaps.calls == []


def test_stale_contiguous_delta_is_dropped_and_counted(rig: _Rig) -> None:
    _deltas(rig, [(9, 10), (10, 11), (9, 10), (8, 11)])

    assert rig.sink.seqs() == [10, 11]
    stats = rig.orderer.statistics()
    assert (stats.stale_dropped, stats.gaps) == (2, 0)


def test_gap_is_reported_and_deltas_are_dropped_until_a_snapshot_re_anchors(
    rig: _Rig,
) -> None:
    _deltas(rig, [(1, 2), (2, 3), (4, 5), (5, 6), (6, 7)])
    assert rig.gaps.calls == [(_PROVIDER, _BTC, "expected prev_seq 3, got 4")]

    _snapshot(rig, 20)
    _deltas(rig, [(20, 21), (21, 22)])

    assert [(o.kind, o.seq) for o in rig.sink.out] == [
        (Kind.BOOK_DELTA, 2),
        (Kind.BOOK_DELTA, 3),
        (Kind.BOOK_SNAPSHOT, 20),
        (Kind.BOOK_DELTA, 21),
        (Kind.BOOK_DELTA, 22),
    ]
    stats = rig.orderer.statistics()
    assert (stats.gaps, stats.gap_dropped) == (1, 3)
    assert len(rig.gaps.calls) == 1


def test_snapshot_re_anchors_a_broken_book_even_at_an_older_seq(rig: _Rig) -> None:
    _deltas(rig, [(1, 2), (5, 6)])  # gap after 2
    _snapshot(rig, 1)  # the first snapshot of the book: released
    _deltas(rig, [(1, 2)])

    assert rig.sink.seqs(Kind.BOOK_DELTA) == [2, 2]


def test_gap_in_one_book_leaves_other_books_flowing(rig: _Rig) -> None:
    _deltas(rig, [(1, 2), (3, 4)])
    _deltas(rig, [(1, 2), (2, 3)], instrument=_ETH)
    _deltas(rig, [(1, 2), (2, 3)], provider="binance")

    assert [(o.provider, o.instrument, o.seq) for o in rig.sink.out] == [
        (_PROVIDER, _BTC, 2),
        (_PROVIDER, _ETH, 2),
        (_PROVIDER, _ETH, 3),
        ("binance", _BTC, 2),
        ("binance", _BTC, 3),
    ]
    assert len(rig.gaps.calls) == 1


def test_snapshot_of_another_book_does_not_end_a_gap(rig: _Rig) -> None:
    _deltas(rig, [(1, 2), (3, 4)])
    _snapshot(rig, 9, instrument=_ETH)
    _deltas(rig, [(9, 10)])

    assert rig.sink.seqs(Kind.BOOK_DELTA) == [2]
    assert rig.orderer.statistics().gap_dropped == 2


def test_snapshot_newer_than_the_deltas_re_anchors_a_flowing_book(rig: _Rig) -> None:
    _deltas(rig, [(1, 2), (2, 3)])
    _snapshot(rig, 10)
    _deltas(rig, [(3, 4), (10, 11)])

    assert rig.sink.seqs(Kind.BOOK_DELTA) == [2, 3, 11]
    assert rig.orderer.statistics().stale_dropped == 1
    assert rig.gaps.calls == []


def test_snapshot_older_than_the_deltas_does_not_rewind_a_flowing_book(rig: _Rig) -> None:
    _deltas(rig, [(9, 10)])
    _snapshot(rig, 5)
    _deltas(rig, [(10, 11), (5, 6)])

    assert rig.sink.seqs(Kind.BOOK_DELTA) == [10, 11]
    assert rig.orderer.statistics().stale_dropped == 1


def test_snapshot_before_any_delta_anchors_the_book(rig: _Rig) -> None:
    _snapshot(rig, 7)
    _deltas(rig, [(6, 7), (8, 9), (7, 8)])

    assert rig.sink.seqs(Kind.BOOK_DELTA) == []
    assert len(rig.gaps.calls) == 1  # (8, 9) does not follow 7
    stats = rig.orderer.statistics()
    assert (stats.stale_dropped, stats.gap_dropped) == (1, 2)


def test_stale_snapshot_is_dropped_without_re_anchoring_a_broken_book(rig: _Rig) -> None:
    _snapshot(rig, 10)
    _deltas(rig, [(10, 11), (11, 12), (14, 15)])  # gap after 12
    _snapshot(rig, 10)  # a duplicate of the first snapshot: dropped, anchors nothing
    _deltas(rig, [(10, 11), (15, 16)])

    assert rig.sink.seqs() == [10, 11, 12]
    stats = rig.orderer.statistics()
    assert (stats.stale_dropped, stats.gaps, stats.gap_dropped) == (2, 1, 2)

    _snapshot(rig, 16)
    _deltas(rig, [(16, 17)])
    assert rig.sink.seqs() == [10, 11, 12, 16, 17]


def test_delta_without_prev_seq_is_ordered_by_the_reorder_window(rig: _Rig) -> None:
    _deltas(rig, [(None, 2), (None, 1)])
    rig.orderer.expire(_LATENESS, rig.sink)

    assert rig.sink.seqs() == [1, 2]
    assert rig.gaps.calls == []


def test_snapshot_past_held_window_deltas_makes_them_stale(rig: _Rig) -> None:
    _deltas(rig, [(None, 5), (None, 6)])  # no prev_seq: held as a stream's first events
    _snapshot(rig, 10)
    rig.orderer.expire(0.0, rig.sink)

    assert rig.orderer.next_deadline() == math.inf  # nothing held any more
    _deltas(rig, [(None, 11)])
    assert rig.sink.seqs() == [10, 11]
    stats = rig.orderer.statistics()
    assert (stats.stale_dropped, stats.held, stats.holes_skipped) == (2, 0, 0)


def test_contiguous_delta_past_held_window_deltas_makes_them_stale(rig: _Rig) -> None:
    _deltas(rig, [(None, 1)])  # held by the reorder window
    _deltas(rig, [(0, 1), (1, 2)])  # the same book, contiguous
    rig.orderer.expire(_LATENESS, rig.sink)

    assert rig.sink.seqs() == [1, 2]
    stats = rig.orderer.statistics()
    assert (stats.stale_dropped, stats.held, stats.holes_skipped) == (1, 0, 0)


# -- reorder window --------------------------------------------------------------------


def test_first_event_of_a_stream_is_held_until_its_lateness_passes(rig: _Rig) -> None:
    _trades(rig, [1], now=3.0)
    assert rig.sink.out == []
    assert rig.orderer.statistics().held == 1
    assert rig.orderer.next_deadline() == 3.0 + _LATENESS

    rig.orderer.expire(3.0, rig.sink)  # sweeps; the event still waits
    assert rig.orderer.next_deadline() == 3.0 + _LATENESS
    rig.orderer.expire(3.0 + _LATENESS - 0.001, rig.sink)
    assert rig.sink.out == []

    rig.orderer.expire(3.0 + _LATENESS, rig.sink)
    assert rig.sink.seqs() == [1]
    stats = rig.orderer.statistics()
    assert (stats.held, stats.holes_skipped) == (0, 0)


def test_early_out_of_order_first_events_are_released_in_order(rig: _Rig) -> None:
    _trades(rig, [3, 1, 2])
    rig.orderer.expire(_LATENESS, rig.sink)

    assert rig.sink.seqs() == [1, 2, 3]
    assert rig.orderer.statistics().holes_skipped == 0


def test_in_order_events_are_released_at_once_after_the_stream_started(rig: _Rig) -> None:
    _anchor_trades(rig)
    _trades(rig, [2, 3, 4])

    assert rig.sink.seqs() == [1, 2, 3, 4]
    assert rig.orderer.statistics().held == 0


def test_out_of_order_events_are_released_in_seq_order_once_the_hole_fills(
    rig: _Rig,
) -> None:
    _anchor_trades(rig)
    _trades(rig, [4, 3])
    assert rig.sink.seqs() == [1]
    assert rig.orderer.statistics().held == 2

    _trades(rig, [2])
    assert rig.sink.seqs() == [1, 2, 3, 4]
    stats = rig.orderer.statistics()
    assert (stats.held, stats.holes_skipped, stats.stale_dropped) == (0, 0, 0)


def test_duplicates_of_held_and_released_events_are_dropped_as_stale(rig: _Rig) -> None:
    _anchor_trades(rig)
    _trades(rig, [3, 3, 1, 2, 2, 3])

    assert rig.sink.seqs() == [1, 2, 3]
    assert rig.orderer.statistics().stale_dropped == 4


def test_window_overflow_gives_up_the_hole(rig: _Rig) -> None:
    _anchor_trades(rig)
    _trades(rig, [3, 4, 5, 6])  # window full: the hole at 2 is still awaited
    assert rig.sink.seqs() == [1]

    _trades(rig, [7])
    assert rig.sink.seqs() == [1, 3, 4, 5, 6, 7]
    _trades(rig, [2])  # too late
    stats = rig.orderer.statistics()
    assert (stats.holes_skipped, stats.stale_dropped, stats.held) == (1, 1, 0)


def test_window_overflow_before_a_stream_starts_counts_no_hole(rig: _Rig) -> None:
    _trades(rig, [5, 3, 4, 6, 7])

    assert rig.sink.seqs() == [3, 4, 5, 6, 7]
    assert rig.orderer.statistics().holes_skipped == 0


def test_lateness_releases_held_events_at_their_deadlines(rig: _Rig) -> None:
    _anchor_trades(rig)
    _trades(rig, [3], now=10.0)
    _trades(rig, [5], now=10.25)
    rig.orderer.expire(10.0, rig.sink)  # a sweep, so only hold deadlines are left
    assert rig.orderer.next_deadline() == 10.0 + _LATENESS

    rig.orderer.expire(10.0 + _LATENESS, rig.sink)
    assert rig.sink.seqs() == [1, 3]  # hole 2 given up; 5 waits for 4 until its own deadline
    assert rig.orderer.next_deadline() == 10.25 + _LATENESS

    rig.orderer.expire(10.25 + _LATENESS, rig.sink)
    assert rig.sink.seqs() == [1, 3, 5]
    stats = rig.orderer.statistics()
    assert (stats.holes_skipped, stats.held) == (2, 0)


def test_filled_hole_cancels_the_wait(rig: _Rig) -> None:
    _anchor_trades(rig)
    _trades(rig, [3], now=10.0)
    _trades(rig, [2], now=10.1)
    rig.orderer.expire(10.1, rig.sink)

    assert rig.sink.seqs() == [1, 2, 3]
    assert rig.orderer.next_deadline() == math.inf  # sweeps are not deadlines
    assert rig.orderer.statistics().holes_skipped == 0


def test_lateness_gives_up_only_the_holes_below_the_expired_event(rig: _Rig) -> None:
    _anchor_trades(rig)
    _trades(rig, [6], now=1.0)
    _trades(rig, [3], now=2.0)
    rig.orderer.expire(1.0 + _LATENESS, rig.sink)

    # 6 waited long enough: every hole below it is given up (at 2, and at 4 and 5).
    assert rig.sink.seqs() == [1, 3, 6]
    assert rig.orderer.statistics().holes_skipped == 2


def test_window_of_zero_releases_sequenced_events_newest_only(recycler: Recycler) -> None:
    rig = _rig(recycler, window=0)
    _trades(rig, [2, 1, 3, 3, 5])

    assert rig.sink.seqs() == [2, 3, 5]
    stats = rig.orderer.statistics()
    assert (stats.stale_dropped, stats.held) == (2, 0)


# -- newest only -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.TICKER, Kind.KLINE, Kind.MERGED, Kind.BOOK_SNAPSHOT])
def test_latest_kinds_release_only_newer_seqs_at_once(rig: _Rig, kind: Kind) -> None:
    _admit(rig, (_event(rig.pool, kind, s) for s in [5, 3, 5, 6, 9]))

    assert rig.sink.seqs() == [5, 6, 9]
    stats = rig.orderer.statistics()
    assert (stats.stale_dropped, stats.held) == (2, 0)


@pytest.mark.parametrize("kind", [Kind.TRADE, Kind.TICKER])
def test_events_without_seq_are_ordered_by_ingest_ts_ties_allowed(rig: _Rig, kind: Kind) -> None:
    stamps = [100, 100, 99, 150, 120]
    _admit(rig, (_event(rig.pool, kind, None, ingest_ts=t, event_id=t) for t in stamps))

    assert [o.event_id for o in rig.sink.out] == [100, 100, 150]
    assert rig.orderer.statistics().stale_dropped == 2


def test_streams_are_keyed_by_provider_instrument_and_kind(rig: _Rig) -> None:
    _admit(
        rig,
        [
            _event(rig.pool, Kind.TICKER, 5),
            _event(rig.pool, Kind.TICKER, 5, instrument=_ETH),
            _event(rig.pool, Kind.TICKER, 5, provider="binance"),
            _event(rig.pool, Kind.KLINE, 5),
        ],
    )

    assert rig.sink.seqs() == [5, 5, 5, 5]
    assert rig.orderer.statistics().streams == 4


# -- idle streams -------------------------------------------------------------------


def test_idle_stream_is_forgotten_after_its_ttl(rig: _Rig) -> None:
    _admit(rig, [_event(rig.pool, Kind.TICKER, 5)], now=0.0)
    rig.orderer.expire(_TTL - 1.0, rig.sink)
    _admit(rig, [_event(rig.pool, Kind.TICKER, 3)], now=_TTL - 1.0)  # remembered: stale
    assert rig.orderer.statistics().stale_dropped == 1

    rig.orderer.expire(2 * _TTL, rig.sink)
    stats = rig.orderer.statistics()
    assert (stats.streams, stats.expired_streams) == (0, 1)
    _admit(rig, [_event(rig.pool, Kind.TICKER, 3)], now=2 * _TTL)
    assert rig.sink.seqs() == [5, 3]


def test_stream_touched_within_its_ttl_is_kept(rig: _Rig) -> None:
    _admit(rig, [_event(rig.pool, Kind.TICKER, 5)], now=0.0)
    _admit(rig, [_event(rig.pool, Kind.TICKER, 6)], now=_TTL / 2)
    rig.orderer.expire(_TTL, rig.sink)

    stats = rig.orderer.statistics()
    assert (stats.streams, stats.expired_streams) == (1, 0)


def test_stream_holding_events_is_not_forgotten(recycler: Recycler) -> None:
    rig = _rig(recycler, max_lateness=10 * _TTL)
    _trades(rig, [1, 3], now=0.0)
    rig.orderer.expire(2 * _TTL, rig.sink)

    assert rig.orderer.statistics().streams == 1
    rig.orderer.expire(10 * _TTL, rig.sink)
    assert rig.sink.seqs() == [1, 3]


def test_idle_sweep_runs_in_expire_a_quarter_ttl_apart_and_sets_no_deadline(rig: _Rig) -> None:
    assert rig.orderer.next_deadline() == math.inf
    rig.orderer.expire(5.0, rig.sink)  # the first sweep; the next is due at 5 + TTL/4
    _admit(rig, [_event(rig.pool, Kind.TICKER, 5)], now=5.0)
    assert rig.orderer.next_deadline() == math.inf  # a sweep never wakes the dispatcher

    rig.orderer.expire(5.0 + _TTL + 1.0, rig.sink)  # a sweep, idle past the TTL
    assert rig.orderer.statistics().expired_streams == 1
    _admit(rig, [_event(rig.pool, Kind.TICKER, 1)], now=5.0 + _TTL + 1.0)
    rig.orderer.expire(5.0 + _TTL + 2.0, rig.sink)  # too soon for another sweep
    assert rig.orderer.statistics().expired_streams == 1


# -- drain and statistics ------------------------------------------------------------


def test_drain_returns_every_held_event(recycler: Recycler, rig: _Rig) -> None:
    _trades(rig, [2, 3])
    _trades(rig, [7], instrument=_ETH)
    drained = rig.orderer.drain()

    assert sorted((e.instrument, e.seq) for e in drained) == [(_BTC, 2), (_BTC, 3), (_ETH, 7)]
    recycler.recycle_all(drained)
    assert rig.orderer.statistics().held == 0
    assert rig.orderer.next_deadline() == math.inf
    rig.orderer.expire(100.0, rig.sink)
    assert rig.sink.out == []


def test_statistics_count_every_outcome(rig: _Rig) -> None:
    _admit(rig, [_event(rig.pool, Kind.EXEC_REPORT, 1)])
    _anchor_trades(rig)
    _trades(rig, [1, 3])  # stale; held
    _deltas(rig, [(1, 2), (4, 5)])  # released; gap

    stats = rig.orderer.statistics()
    assert stats.streams == 2
    assert stats.held == 1
    assert stats.released == 3
    assert stats.stale_dropped == 1
    assert stats.gaps == 1
    assert stats.gap_dropped == 1
    assert stats.holes_skipped == 0
    assert stats.expired_streams == 0
    rig.orderer.expire(_LATENESS, rig.sink)
    assert rig.orderer.statistics().holes_skipped == 1


# -- properties ---------------------------------------------------------------------


@st.composite
def _windowed_arrivals(draw: st.DrawFn) -> tuple[int, list[int], int]:
    """(window, arrivals, duplicates): seqs 1..n shuffled within blocks of at most
    ``window``, then re-sends of already sent seqs inserted after their first arrival."""
    window = draw(st.integers(min_value=1, max_value=8))
    n = draw(st.integers(min_value=1, max_value=60))
    arrivals: list[int] = []
    start = 1
    while start <= n:
        size = draw(st.integers(min_value=1, max_value=window))
        block = list(range(start, min(start + size, n + 1)))
        arrivals.extend(draw(st.permutations(block)))
        start += size
    duplicates = draw(st.integers(min_value=0, max_value=10))
    for _ in range(duplicates):
        original = draw(st.integers(min_value=0, max_value=len(arrivals) - 1))
        at = draw(st.integers(min_value=original + 1, max_value=len(arrivals)))
        arrivals.insert(at, arrivals[original])
    return window, arrivals, duplicates


@settings(max_examples=200, deadline=None)
@given(case=_windowed_arrivals())
def test_reorder_window_releases_every_distinct_seq_in_order(
    case: tuple[int, list[int], int],
) -> None:
    window, arrivals, duplicates = case
    recycler = Recycler(debug=True)
    rig = _rig(recycler, window=window, max_lateness=10.0)
    for i, seq in enumerate(arrivals):
        _trades(rig, [seq], now=i * 0.001)
    rig.orderer.expire(len(arrivals) * 0.001 + 10.0, rig.sink)

    assert rig.sink.seqs() == list(range(1, max(arrivals) + 1))
    stats = rig.orderer.statistics()
    assert (stats.stale_dropped, stats.holes_skipped, stats.held) == (duplicates, 0, 0)
    assert not recycler.leak_report()


@settings(max_examples=100, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(
            st.sampled_from(list(Kind)),
            st.one_of(st.none(), st.integers(min_value=0, max_value=5)),
        ),
        max_size=60,
    )
)
def test_critical_events_are_never_dropped_and_keep_arrival_order(
    arrivals: list[tuple[Kind, int | None]],
) -> None:
    recycler = Recycler(debug=True)
    rig = _rig(recycler, window=2)
    for event_id, (kind, seq) in enumerate(arrivals):
        prev = seq - 1 if seq is not None and kind is Kind.BOOK_DELTA else None
        event = _event(rig.pool, kind, seq, prev_seq=prev, event_id=event_id)
        rig.orderer.admit(event, 0.0, rig.sink)
    rig.orderer.expire(100.0, rig.sink)
    recycler.recycle_all(rig.orderer.drain())

    critical = [i for i, (kind, _) in enumerate(arrivals) if kind in _CRITICAL]
    assert [o.event_id for o in rig.sink.out if o.kind in _CRITICAL] == critical
    assert not recycler.leak_report()


_BOOK_OPS: Final = st.lists(
    st.one_of(
        st.tuples(st.just("delta"), st.integers(min_value=1, max_value=3)),
        st.tuples(st.just("gap"), st.integers(min_value=1, max_value=3)),
        st.tuples(st.just("snapshot"), st.just(0)),
        st.tuples(st.just("resend"), st.integers(min_value=0, max_value=1000)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ops=_BOOK_OPS)
def test_contiguous_book_releases_only_unbroken_runs_from_each_snapshot(
    ops: list[tuple[str, int]],
) -> None:
    """A source numbers its book updates; deltas cover (prev_seq, seq], a gap loses some
    updates, a snapshot carries the book at the last update, a resend repeats a delta."""
    recycler = Recycler(debug=True)
    rig = _rig(recycler)
    head = 0  # the source's last update
    sent: list[tuple[int | None, int]] = []
    broken_at: int | None = None  # releases so far, if a gap came since the last snapshot
    expected_gaps = 0
    _snapshot(rig, head)  # the anchoring snapshot
    for op, arg in ops:
        if op == "snapshot":
            broken_at = None
            _snapshot(rig, head)
        elif op == "resend" and sent:
            _deltas(rig, [sent[arg % len(sent)]])
        elif op in ("delta", "gap"):
            if op == "gap":
                head += arg  # updates lost on the way
                if broken_at is None:
                    expected_gaps += 1
                    broken_at = len(rig.sink.out)
            pair = (head, head + (arg if op == "delta" else 1))
            head = pair[1]
            sent.append(pair)
            _deltas(rig, [pair])
        if broken_at is not None:
            assert len(rig.sink.out) == broken_at, "released between a gap and a snapshot"

    anchor: int | None = None
    for out in rig.sink.out:
        if out.kind is Kind.BOOK_SNAPSHOT:
            assert out.seq is not None
            anchor = out.seq if anchor is None else max(anchor, out.seq)
        else:
            assert out.prev_seq == anchor, "a released delta does not continue the book"
            anchor = out.seq
    assert len(rig.gaps.calls) == expected_gaps
    assert rig.orderer.statistics().gaps == expected_gaps
    assert not recycler.leak_report()


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([Kind.TRADE, Kind.BOOK_DELTA, Kind.BOOK_SNAPSHOT, Kind.TICKER])
            | st.sampled_from(_CRITICAL),
            st.sampled_from([_BTC, _ETH]),
            st.one_of(st.none(), st.integers(min_value=1, max_value=12)),
            st.booleans(),  # a book delta with prev_seq
            st.floats(min_value=0.0, max_value=0.4),  # time since the previous step
            st.booleans(),  # call expire after this step
        ),
        max_size=80,
    ),
    window=st.integers(min_value=0, max_value=4),
)
def test_every_admitted_event_is_released_or_recycled_exactly_once(
    steps: Sequence[tuple[Kind, str, int | None, bool, float, bool]], window: int
) -> None:
    recycler = Recycler(debug=True)
    rig = _rig(recycler, window=window, idle_ttl=1.0)
    now = 0.0
    for kind, instrument, seq, contiguous, elapsed, expire in steps:
        now += elapsed
        prev = seq - 1 if contiguous and seq is not None else None
        event = _event(rig.pool, kind, seq, prev_seq=prev, instrument=instrument)
        rig.orderer.admit(event, now, rig.sink)  # a double recycle raises in debug mode
        if expire:
            rig.orderer.expire(now, rig.sink)
            assert rig.orderer.next_deadline() > now
    drained = rig.orderer.drain()
    recycler.recycle_all(drained)

    stats = rig.orderer.statistics()
    assert stats.released == len(rig.sink.out)
    assert stats.released + stats.stale_dropped + stats.gap_dropped + len(drained) == len(steps)
    pool = rig.pool.statistics()
    assert pool.acquired == pool.recycled == len(steps)
    assert not recycler.leak_report()
