"""Lane: the delivery class of every kind, enforced while a subscriber lags.

Every test ends with no lease outstanding: the ``recycler`` fixture fails it otherwise,
so each test recycles what it takes from the lane.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import hypothesis.strategies as st
import pytest
import trio
import trio.testing
from hypothesis import given, settings

from meltica_trio import BookDelta, BookSnapshot, Event, EventPool, Kind, Recycler, Ticker
from meltica_trio.bus import Lane

_PROVIDER: Final = "binance"
_BTC: Final = "BTC-USDT"
_ETH: Final = "ETH-USDT"
_NOW_NS: Final = 1_700_000_000_000_000_000
_CRITICAL: Final = (Kind.EXEC_REPORT, Kind.CONTROL_ACK, Kind.CONTROL_RESULT, Kind.BOOK_STATUS)


class _BookLosses:
    """Records the lane's ``on_book_lost`` calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, provider: str, instrument: str) -> None:
        self.calls.append((provider, instrument))


class _WallClock:
    """An injected wall clock in ns, moved by hand."""

    def __init__(self, now: int = _NOW_NS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def events(recycler: Recycler) -> EventPool[Event]:
    """A debug-mode pool big enough to flood a lane."""
    return EventPool(Event, recycler=recycler, capacity=512, name="lane-test")


@pytest.fixture
def losses() -> _BookLosses:
    return _BookLosses()


@pytest.fixture
def clock() -> _WallClock:
    return _WallClock()


def _lane(
    recycler: Recycler,
    losses: _BookLosses | None = None,
    clock: _WallClock | None = None,
    *,
    capacity: int = 4,
) -> Lane:
    return Lane(
        "strategy-1",
        capacity,
        recycler,
        on_book_lost=losses if losses is not None else _BookLosses(),
        wall_clock=clock if clock is not None else _WallClock(),
    )


def _event(
    pool: EventPool[Event],
    kind: Kind,
    seq: int | None = None,
    *,
    provider: str = _PROVIDER,
    instrument: str = _BTC,
    ingest_ts: int = _NOW_NS,
    payload: object = None,
) -> Event:
    event = pool.acquire_nowait()
    event.kind = kind
    event.provider = provider
    event.instrument = instrument
    event.seq = seq
    event.ingest_ts = ingest_ts
    event.payload = payload  # type: ignore[assignment]
    return event


def _ticker(bid: str) -> Ticker:
    return Ticker(bid_price=bid, bid_size="1", ask_price="99999", ask_size="1")


def _put_all(lane: Lane, events: Iterable[Event]) -> None:
    for event in events:
        lane.put(event)


async def _take(lane: Lane, recycler: Recycler) -> list[tuple[Kind, str, int | None, int]]:
    """Take one batch, recycle it, and return (kind, instrument, seq, skipped) of each."""
    batch = await lane.take_batch()
    seen = [(e.kind, e.instrument, e.seq, e.skipped) for e in batch]
    recycler.recycle_all(batch)
    return seen


def _seqs(seen: Iterable[tuple[Kind, str, int | None, int]]) -> list[int | None]:
    return [seq for _, _, seq, _ in seen]


# -- construction ------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [0, -3])
def test_capacity_below_one_is_rejected(recycler: Recycler, capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        _lane(recycler, capacity=capacity)


# -- CRITICAL ------------------------------------------------------------------------


async def test_critical_events_are_never_dropped_far_past_capacity(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler, capacity=2)
    _put_all(lane, (_event(events, _CRITICAL[i % 4], seq=i) for i in range(200)))

    stats = lane.statistics()
    assert (stats.depth, stats.critical_backlog) == (200, 200)
    assert stats.skipped == stats.overflowed == stats.coalesced == 0
    seen = await _take(lane, recycler)
    assert _seqs(seen) == list(range(200))
    assert [kind for kind, *_ in seen] == [_CRITICAL[i % 4] for i in range(200)]


async def test_critical_events_survive_overflow_of_sequenced_events_around_them(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler, capacity=2)
    for i in range(50):
        lane.put(_event(events, Kind.EXEC_REPORT, seq=i))
        lane.put(_event(events, Kind.TRADE, seq=i))

    stats = lane.statistics()
    assert stats.critical_backlog == 50
    assert stats.depth == 52  # every critical event plus `capacity` trades
    assert stats.skipped == 48
    seen = await _take(lane, recycler)
    assert [seq for kind, _, seq, _ in seen if kind is Kind.EXEC_REPORT] == list(range(50))
    assert [seq for kind, _, seq, _ in seen if kind is Kind.TRADE] == [48, 49]


async def test_critical_event_is_never_chosen_as_the_overflow_victim(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler, capacity=2)
    _put_all(
        lane,
        [
            _event(events, Kind.EXEC_REPORT, seq=1),
            _event(events, Kind.TRADE, seq=1),
            _event(events, Kind.TRADE, seq=2),
            _event(events, Kind.TRADE, seq=3),
        ],
    )

    seen = await _take(lane, recycler)
    assert [(kind, seq) for kind, _, seq, _ in seen] == [
        (Kind.EXEC_REPORT, 1),
        (Kind.TRADE, 2),
        (Kind.TRADE, 3),
    ]


async def test_arrival_order_is_kept_across_kinds(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler, capacity=8)
    kinds = [Kind.TRADE, Kind.EXEC_REPORT, Kind.TICKER, Kind.BOOK_DELTA, Kind.CONTROL_ACK]
    _put_all(lane, (_event(events, kind, seq=i) for i, kind in enumerate(kinds)))

    seen = await _take(lane, recycler)
    assert [kind for kind, *_ in seen] == kinds


# -- LATEST --------------------------------------------------------------------------


async def test_latest_event_replaces_the_queued_one_in_place(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler, capacity=8)
    lane.put(_event(events, Kind.TICKER, seq=1, payload=_ticker("100")))
    lane.put(_event(events, Kind.TRADE, seq=1))
    lane.put(_event(events, Kind.TICKER, seq=2, payload=_ticker("101")))
    lane.put(_event(events, Kind.TICKER, seq=3, payload=_ticker("102")))

    stats = lane.statistics()
    assert (stats.depth, stats.coalesced, stats.skipped, stats.overflowed) == (2, 2, 0, 0)
    batch = await lane.take_batch()
    assert [(e.kind, e.seq) for e in batch] == [(Kind.TICKER, 3), (Kind.TRADE, 1)]
    assert batch[0].payload == _ticker("102")
    recycler.recycle_all(batch)


@pytest.mark.parametrize(
    ("kind", "provider", "instrument"),
    [
        (Kind.KLINE, _PROVIDER, _BTC),
        (Kind.TICKER, "okx", _BTC),
        (Kind.TICKER, _PROVIDER, _ETH),
    ],
    ids=["kind", "provider", "instrument"],
)
async def test_latest_events_with_another_key_are_not_merged(
    recycler: Recycler, events: EventPool[Event], kind: Kind, provider: str, instrument: str
) -> None:
    lane = _lane(recycler, capacity=8)
    lane.put(_event(events, Kind.TICKER, seq=1))
    lane.put(_event(events, kind, seq=2, provider=provider, instrument=instrument))

    assert lane.statistics().coalesced == 0
    assert _seqs(await _take(lane, recycler)) == [1, 2]


async def test_latest_event_after_a_take_is_queued_not_merged_into_the_delivered_one(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler, capacity=8)
    lane.put(_event(events, Kind.TICKER, seq=1))
    delivered = await lane.take_batch()
    lane.put(_event(events, Kind.TICKER, seq=2))

    assert [e.seq for e in delivered] == [1]  # the delivered envelope was left alone
    recycler.recycle_all(delivered)
    assert lane.statistics().coalesced == 0
    assert _seqs(await _take(lane, recycler)) == [2]


async def test_latest_event_dropped_on_overflow_is_counted_as_overflowed(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler, capacity=2)
    _put_all(
        lane,
        [
            _event(events, Kind.TICKER, seq=1),
            _event(events, Kind.TRADE, seq=1),
            _event(events, Kind.TRADE, seq=2),
            # The dropped ticker no longer has a slot to be merged into.
            _event(events, Kind.TICKER, seq=2),
        ],
    )

    stats = lane.statistics()
    assert (stats.overflowed, stats.skipped, stats.coalesced) == (1, 1, 0)
    seen = await _take(lane, recycler)
    assert [(kind, seq, skipped) for kind, _, seq, skipped in seen] == [
        (Kind.TRADE, 2, 1),
        (Kind.TICKER, 2, 0),
    ]


# -- SEQUENCED -----------------------------------------------------------------------


async def test_sequenced_overflow_drops_the_oldest_and_reports_it_on_the_next_event(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler, capacity=3)
    _put_all(lane, (_event(events, Kind.TRADE, seq=i) for i in range(1, 8)))

    stats = lane.statistics()
    assert (stats.depth, stats.skipped, stats.overflowed) == (3, 4, 0)
    seen = await _take(lane, recycler)
    assert [(seq, skipped) for _, _, seq, skipped in seen] == [(5, 4), (6, 0), (7, 0)]


async def test_skip_count_goes_to_the_next_event_of_the_same_stream_only(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler, capacity=2)
    _put_all(
        lane,
        [
            _event(events, Kind.TRADE, seq=1, instrument=_BTC),
            _event(events, Kind.TRADE, seq=1, instrument=_ETH),
            _event(events, Kind.TRADE, seq=2, instrument=_ETH),  # drops BTC 1
        ],
    )
    first = await _take(lane, recycler)
    lane.put(_event(events, Kind.TRADE, seq=2, instrument=_BTC))
    second = await _take(lane, recycler)

    assert first == [(Kind.TRADE, _ETH, 1, 0), (Kind.TRADE, _ETH, 2, 0)]
    assert second == [(Kind.TRADE, _BTC, 2, 1)]


async def test_skip_count_is_reported_once(recycler: Recycler, events: EventPool[Event]) -> None:
    lane = _lane(recycler, capacity=1)
    _put_all(lane, (_event(events, Kind.TRADE, seq=i) for i in (1, 2)))
    first = await _take(lane, recycler)
    lane.put(_event(events, Kind.TRADE, seq=3))
    second = await _take(lane, recycler)

    assert [(seq, skipped) for _, _, seq, skipped in first + second] == [(2, 1), (3, 0)]


# -- book deltas ---------------------------------------------------------------------


async def test_lost_book_delta_purges_that_books_queued_deltas_and_asks_for_a_snapshot(
    recycler: Recycler, events: EventPool[Event], losses: _BookLosses
) -> None:
    lane = _lane(recycler, losses, capacity=4)
    _put_all(
        lane,
        [
            _event(events, Kind.BOOK_DELTA, seq=1),
            _event(events, Kind.BOOK_DELTA, seq=1, instrument=_ETH),
            _event(events, Kind.BOOK_DELTA, seq=2),
            _event(events, Kind.BOOK_DELTA, seq=3),
            _event(events, Kind.TRADE, seq=1),  # overflow: BTC delta 1 is lost
        ],
    )

    assert losses.calls == [(_PROVIDER, _BTC)]
    stats = lane.statistics()
    assert (stats.depth, stats.skipped, stats.books_awaiting_snapshot) == (2, 3, 1)
    seen = await _take(lane, recycler)
    assert seen == [(Kind.BOOK_DELTA, _ETH, 1, 0), (Kind.TRADE, _BTC, 1, 0)]


async def test_lost_book_drops_its_deltas_until_a_snapshot_of_that_book(
    recycler: Recycler, events: EventPool[Event], losses: _BookLosses
) -> None:
    lane = _lane(recycler, losses, capacity=2)
    # Delta 3 overflows: delta 1 is lost, 2 is purged, and 3 itself is dropped.
    _put_all(lane, (_event(events, Kind.BOOK_DELTA, seq=i) for i in (1, 2, 3)))
    assert lane.statistics().depth == 0
    _put_all(
        lane,
        [
            _event(events, Kind.BOOK_DELTA, seq=4),
            _event(events, Kind.BOOK_DELTA, seq=1, instrument=_ETH),  # another book flows
            _event(events, Kind.BOOK_SNAPSHOT, seq=5, instrument=_ETH),  # not this book's
            _event(events, Kind.BOOK_DELTA, seq=5),
        ],
    )
    assert lane.statistics().books_awaiting_snapshot == 1
    middle = await _take(lane, recycler)
    _put_all(
        lane,
        [
            _event(events, Kind.BOOK_SNAPSHOT, seq=6),
            _event(events, Kind.BOOK_DELTA, seq=7),
        ],
    )
    last = await _take(lane, recycler)

    assert losses.calls == [(_PROVIDER, _BTC)]  # once, however many deltas were dropped
    assert middle == [
        (Kind.BOOK_DELTA, _ETH, 1, 0),
        (Kind.BOOK_SNAPSHOT, _ETH, 5, 0),
    ]
    # Deltas 1, 2, 3 (lost and purged), 4 and 5 (awaiting the snapshot) were skipped.
    assert last == [(Kind.BOOK_SNAPSHOT, _BTC, 6, 0), (Kind.BOOK_DELTA, _BTC, 7, 5)]
    stats = lane.statistics()
    assert (stats.skipped, stats.books_awaiting_snapshot) == (5, 0)


async def test_delta_whose_own_book_the_overflow_just_lost_is_skipped(
    recycler: Recycler, events: EventPool[Event], losses: _BookLosses
) -> None:
    lane = _lane(recycler, losses, capacity=1)
    _put_all(lane, (_event(events, Kind.BOOK_DELTA, seq=i) for i in (1, 2)))

    stats = lane.statistics()
    assert (stats.depth, stats.skipped, stats.books_awaiting_snapshot) == (0, 2, 1)
    assert losses.calls == [(_PROVIDER, _BTC)]


async def test_other_books_keep_flowing_while_one_awaits_its_snapshot(
    recycler: Recycler, events: EventPool[Event], losses: _BookLosses
) -> None:
    lane = _lane(recycler, losses, capacity=2)
    _put_all(lane, (_event(events, Kind.BOOK_DELTA, seq=i) for i in (1, 2, 3)))
    _put_all(
        lane,
        (_event(events, Kind.BOOK_DELTA, seq=i, provider="okx") for i in (1, 2)),
    )

    seen = await _take(lane, recycler)
    assert [(seq, skipped) for *_, seq, skipped in seen] == [(1, 0), (2, 0)]
    assert losses.calls == [(_PROVIDER, _BTC)]


async def test_snapshot_merged_into_a_queued_snapshot_ends_the_wait_for_one(
    recycler: Recycler, events: EventPool[Event], losses: _BookLosses
) -> None:
    lane = _lane(recycler, losses, capacity=4)
    _put_all(
        lane,
        [
            _event(events, Kind.BOOK_DELTA, seq=1),
            _event(events, Kind.BOOK_SNAPSHOT, seq=1),
            _event(events, Kind.BOOK_DELTA, seq=2),
            _event(events, Kind.TRADE, seq=1),
            _event(events, Kind.TRADE, seq=2),  # overflow: delta 1 is lost, 2 purged
        ],
    )
    assert losses.calls == [(_PROVIDER, _BTC)]
    # The snapshot the lane asked for arrives while an older one is still queued.
    lane.put(_event(events, Kind.BOOK_SNAPSHOT, seq=5))
    lane.put(_event(events, Kind.BOOK_DELTA, seq=6))

    assert lane.statistics().books_awaiting_snapshot == 0
    seen = await _take(lane, recycler)
    assert [(kind, seq, skipped) for kind, _, seq, skipped in seen] == [
        (Kind.BOOK_SNAPSHOT, 5, 0),
        (Kind.TRADE, 1, 0),
        (Kind.TRADE, 2, 0),
        (Kind.BOOK_DELTA, 6, 2),
    ]
    assert losses.calls == [(_PROVIDER, _BTC)]


async def test_snapshot_that_arrives_as_the_overflow_loses_its_books_delta_anchors_it(
    recycler: Recycler, events: EventPool[Event], losses: _BookLosses
) -> None:
    lane = _lane(recycler, losses, capacity=2)
    _put_all(
        lane,
        [
            _event(events, Kind.BOOK_DELTA, seq=1),
            _event(events, Kind.TRADE, seq=1),
            _event(events, Kind.BOOK_SNAPSHOT, seq=1),  # overflow: delta 1 is lost first
            _event(events, Kind.BOOK_DELTA, seq=2),
        ],
    )

    assert lane.statistics().books_awaiting_snapshot == 0
    seen = await _take(lane, recycler)
    assert [(kind, seq) for kind, _, seq, _ in seen] == [
        (Kind.BOOK_SNAPSHOT, 1),
        (Kind.BOOK_DELTA, 2),
    ]


async def test_book_whose_resync_snapshot_overflows_is_lost_again(
    recycler: Recycler, events: EventPool[Event], losses: _BookLosses
) -> None:
    lane = _lane(recycler, losses, capacity=2)
    _put_all(
        lane,
        [
            _event(events, Kind.BOOK_DELTA, seq=1),
            _event(events, Kind.TRADE, seq=1),
            _event(events, Kind.TRADE, seq=2),  # overflow: delta 1 is lost
            _event(events, Kind.BOOK_SNAPSHOT, seq=1),  # overflow drops trade 1
            _event(events, Kind.BOOK_DELTA, seq=2),  # overflow drops trade 2
            _event(events, Kind.BOOK_DELTA, seq=3),  # overflow would drop the snapshot
        ],
    )

    # No delta may reach the subscriber before a snapshot put after its loss.
    assert losses.calls == [(_PROVIDER, _BTC), (_PROVIDER, _BTC)]
    stats = lane.statistics()
    assert (stats.depth, stats.overflowed, stats.books_awaiting_snapshot) == (0, 1, 1)
    _put_all(
        lane,
        [
            _event(events, Kind.BOOK_SNAPSHOT, seq=3),
            _event(events, Kind.BOOK_DELTA, seq=4),
        ],
    )
    seen = await _take(lane, recycler)
    assert [(kind, seq, skipped) for kind, _, seq, skipped in seen] == [
        (Kind.BOOK_SNAPSHOT, 3, 0),
        (Kind.BOOK_DELTA, 4, 3),
    ]


async def test_snapshot_delivered_to_the_subscriber_completes_the_resync(
    recycler: Recycler, events: EventPool[Event], losses: _BookLosses
) -> None:
    lane = _lane(recycler, losses, capacity=2)
    _put_all(lane, (_event(events, Kind.BOOK_DELTA, seq=i) for i in (1, 2, 3)))
    lane.put(_event(events, Kind.BOOK_SNAPSHOT, seq=3))
    await _take(lane, recycler)
    # The snapshot is delivered: dropping later snapshots loses nothing the book needs.
    _put_all(
        lane,
        [
            _event(events, Kind.BOOK_SNAPSHOT, seq=4),
            _event(events, Kind.BOOK_DELTA, seq=5),
            _event(events, Kind.BOOK_DELTA, seq=6),  # overflow drops snapshot 4
        ],
    )

    assert losses.calls == [(_PROVIDER, _BTC)]
    seen = await _take(lane, recycler)
    assert [(kind, seq, skipped) for kind, _, seq, skipped in seen] == [
        (Kind.BOOK_DELTA, 5, 3),  # deltas 1 to 3, lost before the snapshot
        (Kind.BOOK_DELTA, 6, 0),
    ]


# -- taking and closing ----------------------------------------------------------------


async def test_take_batch_waits_for_a_put_and_is_woken_by_it(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler)
    taken: list[list[tuple[Kind, str, int | None, int]]] = []

    async def consumer() -> None:
        taken.append(await _take(lane, recycler))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        assert taken == []
        lane.put(_event(events, Kind.TRADE, seq=1))
    assert [_seqs(batch) for batch in taken] == [[1]]


async def test_take_batch_returns_everything_queued_at_once(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler, capacity=16)
    _put_all(lane, (_event(events, Kind.TRADE, seq=i) for i in range(10)))
    lane.put(_event(events, Kind.EXEC_REPORT, seq=10))

    seen = await _take(lane, recycler)
    assert _seqs(seen) == list(range(11))
    stats = lane.statistics()
    assert (stats.depth, stats.critical_backlog, stats.delivered) == (0, 0, 11)


async def test_capacity_is_freed_by_a_take(recycler: Recycler, events: EventPool[Event]) -> None:
    lane = _lane(recycler, capacity=2)
    _put_all(lane, (_event(events, Kind.TRADE, seq=i) for i in (1, 2)))
    await _take(lane, recycler)
    _put_all(lane, (_event(events, Kind.TRADE, seq=i) for i in (3, 4)))

    assert lane.statistics().skipped == 0
    assert _seqs(await _take(lane, recycler)) == [3, 4]


async def test_cancelled_take_batch_takes_nothing(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler)
    lane.put(_event(events, Kind.TRADE, seq=1))
    with trio.CancelScope() as scope:
        scope.cancel()
        await lane.take_batch()
    assert scope.cancelled_caught
    assert lane.statistics().depth == 1
    assert _seqs(await _take(lane, recycler)) == [1]


async def test_close_recycles_queued_events_and_ends_take_batch(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler)
    lane.put(_event(events, Kind.TRADE, seq=1))
    lane.put(_event(events, Kind.TICKER, seq=1))
    lane.put(_event(events, Kind.EXEC_REPORT, seq=1))
    lane.close()

    assert recycler.statistics().outstanding == 0
    assert lane.statistics().depth == 0
    with pytest.raises(trio.EndOfChannel):
        await lane.take_batch()


async def test_close_wakes_a_waiting_take_batch_with_end_of_channel(recycler: Recycler) -> None:
    lane = _lane(recycler)
    ended = trio.Event()

    async def consumer() -> None:
        with pytest.raises(trio.EndOfChannel):
            await lane.take_batch()
        ended.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        lane.close()
    assert ended.is_set()


@pytest.mark.parametrize("kind", [Kind.TRADE, Kind.TICKER, Kind.EXEC_REPORT])
async def test_put_after_close_recycles_the_event(
    recycler: Recycler, events: EventPool[Event], kind: Kind
) -> None:
    lane = _lane(recycler)
    lane.close()
    lane.put(_event(events, kind, seq=1))

    assert recycler.statistics().outstanding == 0
    with pytest.raises(trio.EndOfChannel):
        await lane.take_batch()


# -- statistics ------------------------------------------------------------------------


async def test_statistics_report_every_counter(
    recycler: Recycler, events: EventPool[Event], clock: _WallClock
) -> None:
    lane = _lane(recycler, clock=clock, capacity=3)
    empty = lane.statistics()
    assert (empty.consumer_id, empty.capacity, empty.depth, empty.oldest_age_ns) == (
        "strategy-1",
        3,
        0,
        0,
    )
    _put_all(
        lane,
        [
            _event(events, Kind.EXEC_REPORT, seq=1, ingest_ts=_NOW_NS - 5_000),
            _event(events, Kind.TICKER, seq=1, ingest_ts=_NOW_NS - 4_000),
            _event(events, Kind.TICKER, seq=2, ingest_ts=_NOW_NS - 3_000),  # coalesced
            _event(events, Kind.BOOK_DELTA, seq=1, ingest_ts=_NOW_NS - 2_000),
            _event(events, Kind.TRADE, seq=1, ingest_ts=_NOW_NS - 1_000),
            _event(events, Kind.TRADE, seq=2, ingest_ts=_NOW_NS),  # overflow: the ticker
            _event(events, Kind.TRADE, seq=3, ingest_ts=_NOW_NS),  # overflow: the delta
        ],
    )
    clock.now = _NOW_NS + 1_000

    stats = lane.statistics()
    assert stats.depth == 4
    assert stats.critical_backlog == 1
    assert stats.delivered == 0
    assert stats.coalesced == 1
    assert stats.overflowed == 1
    assert stats.skipped == 1
    assert stats.high_water == 4
    assert stats.oldest_age_ns == 6_000  # the exec report's age
    assert stats.books_awaiting_snapshot == 1

    await _take(lane, recycler)
    after = lane.statistics()
    assert (after.depth, after.delivered, after.high_water, after.oldest_age_ns) == (0, 4, 4, 0)


async def test_high_water_keeps_the_depth_a_purge_or_close_took_away(
    recycler: Recycler, events: EventPool[Event]
) -> None:
    lane = _lane(recycler, capacity=4)
    _put_all(lane, (_event(events, Kind.BOOK_DELTA, seq=i) for i in (1, 2, 3)))
    lane.put(_event(events, Kind.TRADE, seq=1))
    lane.put(_event(events, Kind.TRADE, seq=2))  # overflow: the book's deltas are purged
    assert lane.statistics().depth == 2
    await _take(lane, recycler)
    assert lane.statistics().high_water == 4

    closing = _lane(recycler, capacity=8)
    _put_all(closing, (_event(events, Kind.TRADE, seq=i) for i in range(6)))
    closing.close()
    assert closing.statistics().high_water == 6


async def test_oldest_age_is_never_negative(
    recycler: Recycler, events: EventPool[Event], clock: _WallClock
) -> None:
    lane = _lane(recycler, clock=clock)
    lane.put(_event(events, Kind.TRADE, seq=1, ingest_ts=clock.now + 10))

    assert lane.statistics().oldest_age_ns == 0
    await _take(lane, recycler)


# -- a model of the subscriber ------------------------------------------------------

_BOOKS: Final = (_BTC, _ETH)
# Deltas weigh most: book losses and resyncs are where the rules interact.
_OPS: Final = (
    Kind.BOOK_DELTA,
    Kind.BOOK_DELTA,
    Kind.BOOK_DELTA,
    Kind.BOOK_SNAPSHOT,
    Kind.BOOK_SNAPSHOT,
    Kind.TRADE,
    Kind.TICKER,
    Kind.EXEC_REPORT,
    None,  # the subscriber takes a batch
)


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=4),
    ops=st.lists(
        st.tuples(st.sampled_from(_OPS), st.sampled_from(_BOOKS)), min_size=1, max_size=80
    ),
)
def test_lagging_subscriber_sees_every_delivery_class_rule(
    capacity: int, ops: list[tuple[Kind | None, str]]
) -> None:
    """Whatever the lag, what the subscriber sees is consistent.

    The source numbers each stream 1, 2, 3...; a book snapshot carries the sequence of
    the book's last delta. The subscriber checks: every critical event arrives, in
    order; each SEQUENCED stream arrives in order and ``skipped`` accounts for every
    event missing before it; a book is only ever continued from where the subscriber
    left it, or from a snapshot delivered after the loss (older deltas ignored).
    """
    recycler = Recycler(debug=True)
    pool = EventPool(Event, recycler=recycler, capacity=256, name="model")
    losses = _BookLosses()
    lane = _lane(recycler, losses, capacity=capacity)
    sent: dict[tuple[Kind, str], int] = {}
    criticals: list[tuple[str, int]] = []
    seen_criticals: list[tuple[str, int]] = []
    last_seen: dict[tuple[Kind, str], int] = {}
    delivered_deltas: dict[str, int] = dict.fromkeys(_BOOKS, 0)
    applied: dict[str, int] = dict.fromkeys(_BOOKS, 0)  # the subscriber's book state

    def send(kind: Kind, book: str) -> None:
        payload: object = None
        if kind is Kind.BOOK_SNAPSHOT:
            seq = sent.get((Kind.BOOK_DELTA, book), 0)
            payload = BookSnapshot(bids=(), asks=())
        else:
            seq = sent[(kind, book)] = sent.get((kind, book), 0) + 1
        if kind is Kind.BOOK_DELTA:
            payload = BookDelta(bids=(), asks=(), prev_seq=seq - 1)
        elif kind is Kind.EXEC_REPORT:
            criticals.append((book, seq))
        lane.put(_event(pool, kind, seq, instrument=book, payload=payload))

    def receive(event: Event) -> None:
        kind, book, seq = event.kind, event.instrument, event.seq
        assert seq is not None
        if kind is Kind.EXEC_REPORT:
            seen_criticals.append((book, seq))
        elif kind is Kind.BOOK_SNAPSHOT:
            applied[book] = max(applied[book], seq)
            return
        previous = last_seen.get((kind, book), 0)
        if kind in (Kind.TRADE, Kind.BOOK_DELTA):
            assert seq - previous - 1 == event.skipped, (kind, book, previous, seq)
        else:
            assert seq > previous
        last_seen[(kind, book)] = seq
        if kind is Kind.BOOK_DELTA:
            delivered_deltas[book] += 1
            if seq > applied[book]:
                assert seq == applied[book] + 1, "a book continued past a loss"
                applied[book] = seq

    async def take() -> None:
        if lane.statistics().depth:
            batch = await lane.take_batch()
            for event in batch:
                receive(event)
            recycler.recycle_all(batch)

    async def run() -> None:
        for kind, book in ops:
            if kind is None:
                await take()
                continue
            send(kind, book)
            stats = lane.statistics()
            assert stats.depth - stats.critical_backlog <= capacity
        await take()
        lane.close()

    trio.run(run)
    assert seen_criticals == criticals
    for provider, book in losses.calls:  # asked for a snapshot only after losing a delta
        assert provider == _PROVIDER
        assert delivered_deltas[book] < sent[(Kind.BOOK_DELTA, book)]
    assert not recycler.leak_report()
