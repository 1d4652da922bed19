"""The Merger, driven with plain floats for ``now``: windows, late fragments, ownership."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from meltica_trio import (
    BookSnapshot,
    ConfigError,
    Event,
    EventPool,
    Kind,
    MergedTopOfBook,
    Recycler,
    Side,
    Ticker,
    Trade,
    VenueTop,
)
from meltica_trio._defaults import SCHEMA_VERSION
from meltica_trio.events import Level
from meltica_trio.orchestrator import Merger, MergeRule

_BTC = "BTC-USDT"
_ETH = "ETH-USDT"
_NS = 1_000_000_000
_AUTO = -1  # Feed.make: number this provider's events 1, 2, ...


def _rule(**overrides: Any) -> MergeRule:
    fields: dict[str, Any] = {
        "instrument": _BTC,
        "kind": Kind.TICKER,
        "providers": {"binance", "okx"},
        "window": 1.0,
        "max_count": 8,
    }
    fields.update(overrides)
    return MergeRule(**fields)


def _ticker(bid: str = "100", ask: str = "101") -> Ticker:
    return Ticker(bid_price=bid, bid_size="1", ask_price=ask, ask_size="2")


@attrs.define(eq=False)
class Feed:
    """Plays a source: lends originals, offers them, keeps what the merger emits."""

    pool: EventPool[Event]
    merger: Merger
    originals: list[Event] = attrs.field(factory=list)
    emitted: list[Event] = attrs.field(factory=list)
    _seqs: Counter[str] = attrs.field(factory=Counter)

    def make(
        self,
        provider: str,
        now: float,
        payload: Any = None,
        *,
        instrument: str = _BTC,
        kind: Kind = Kind.TICKER,
        seq: int | None = _AUTO,
        ingest_ts: int | None = None,
        trace_id: str | None = None,
        routing_version: int = 0,
    ) -> Event:
        """Lend one original; by default each provider's events are numbered 1, 2, ..."""
        if seq == _AUTO:
            self._seqs[provider] += 1
            seq = self._seqs[provider]
        event = self.pool.acquire_nowait()
        event.event_id = 1000 + len(self.originals)
        event.kind = kind
        event.provider = provider
        event.instrument = instrument
        event.seq = seq
        event.ingest_ts = round(now * _NS) if ingest_ts is None else ingest_ts
        event.trace_id = trace_id
        event.routing_version = routing_version
        event.payload = _ticker() if payload is None else payload
        self.originals.append(event)
        return event

    def send(self, provider: str, now: float, payload: Any = None, **fields: Any) -> Event:
        """Lend one original (see :meth:`make`) and offer it at ``now``."""
        event = self.make(provider, now, payload, **fields)
        self.merger.offer(event, now, self.emitted.append)
        return event

    def expire(self, now: float) -> None:
        self.merger.expire(now, self.emitted.append)

    def tops(self) -> list[MergedTopOfBook]:
        tops = []
        for event in self.emitted:
            assert isinstance(event.payload, MergedTopOfBook)
            tops.append(event.payload)
        return tops

    def fragments_out(self) -> int:
        """Leases held by the merger: all leases minus the test's originals and merges."""
        return self.pool.statistics().in_use - len(self.originals) - len(self.emitted)


@pytest.fixture
def feed(recycler: Recycler) -> Iterator[Feed]:
    pool = EventPool(Event, recycler=recycler, capacity=256, name="merge")
    feed = Feed(pool, Merger(pool, recycler, [_rule()], next_event_id=itertools.count(1).__next__))
    yield feed
    feed.merger.drain()
    # Recycling the originals here also proves the merger never recycled one of them:
    # in debug mode a second recycle raises DoublePutError.
    recycler.recycle_all([*feed.originals, *feed.emitted])


# -- closing by time and by count ------------------------------------------------------


def test_a_window_closes_when_its_time_is_up(feed: Feed) -> None:
    feed.send("binance", 10.0)
    feed.send("okx", 10.3)
    assert feed.merger.next_deadline() == 11.0
    feed.expire(10.999)
    assert feed.emitted == []
    assert feed.merger.statistics().held == 2
    feed.expire(11.0)
    assert len(feed.emitted) == 1
    stats = feed.merger.statistics()
    assert (stats.opened, stats.closed_by_time, stats.closed_by_count) == (1, 1, 0)
    assert (stats.emitted, stats.suppressed, stats.held, stats.open_windows) == (1, 0, 0, 0)
    assert feed.merger.next_deadline() == math.inf
    assert feed.fragments_out() == 0


def test_a_window_closes_on_the_fragment_that_reaches_max_count(feed: Feed) -> None:
    feed.merger.configure(_rule(max_count=3))
    feed.send("binance", 0.0)
    feed.send("okx", 0.1)
    assert feed.emitted == []
    feed.send("binance", 0.2)
    assert len(feed.emitted) == 1
    stats = feed.merger.statistics()
    assert (stats.closed_by_count, stats.closed_by_time, stats.emitted) == (1, 0, 1)
    assert feed.fragments_out() == 0
    # The next fragment opens a fresh window with a fresh deadline.
    feed.send("okx", 0.3)
    assert feed.merger.next_deadline() == pytest.approx(1.3)
    assert feed.merger.statistics().opened == 2


def test_max_count_equal_to_the_providers_closes_as_soon_as_each_has_spoken(feed: Feed) -> None:
    feed.merger.configure(_rule(providers={"a", "b", "c"}, max_count=3))
    for provider in ("c", "a", "b"):
        feed.send(provider, 5.0)
    assert [v.provider for v in feed.tops()[0].venues] == ["a", "b", "c"]
    assert feed.merger.statistics().closed_by_count == 1


def test_a_fragment_after_the_deadline_closes_the_old_window_before_it_is_taken(
    feed: Feed,
) -> None:
    feed.send("binance", 0.0, _ticker("1", "2"))
    feed.send("okx", 0.5, _ticker("1", "2"))
    # No expire call in between: the due window closes inside offer.
    feed.send("binance", 1.0, _ticker("3", "4"))
    assert len(feed.emitted) == 1
    assert feed.tops()[0].best_bid == ("1", "1")  # the new fragment is not in it
    assert feed.merger.statistics().closed_by_time == 1
    assert feed.merger.statistics().held == 1
    assert feed.merger.next_deadline() == 2.0


# -- suppression -------------------------------------------------------------------------


def test_a_window_missing_a_provider_is_suppressed_never_emitted(feed: Feed) -> None:
    feed.send("binance", 0.0)
    feed.send("binance", 0.5)
    feed.expire(1.0)
    assert feed.emitted == []
    stats = feed.merger.statistics()
    assert (stats.closed_by_time, stats.suppressed, stats.emitted) == (1, 1, 0)
    assert feed.fragments_out() == 0


def test_a_count_close_without_every_provider_is_suppressed(feed: Feed) -> None:
    feed.merger.configure(_rule(providers={"a", "b", "c"}, max_count=3))
    for provider in ("a", "b", "a"):
        feed.send(provider, 0.0)
    assert feed.emitted == []
    stats = feed.merger.statistics()
    assert (stats.closed_by_count, stats.suppressed) == (1, 1)
    assert feed.fragments_out() == 0


# -- late fragments ------------------------------------------------------------------------


def test_a_fragment_not_newer_than_its_venues_merged_data_is_late(feed: Feed) -> None:
    feed.send("binance", 0.0, seq=5)
    feed.send("okx", 0.0, seq=7)
    feed.expire(1.0)
    acquired = feed.pool.statistics().acquired
    feed.send("binance", 1.1, seq=4)  # older than the merged seq 5
    feed.send("binance", 1.2, seq=5)  # the merged one again
    feed.send("okx", 1.3, seq=6)
    # Only the originals were lent: no duplicate of a late fragment was taken.
    assert feed.pool.statistics().acquired == acquired + 3
    stats = feed.merger.statistics()
    assert (stats.late, stats.opened, stats.open_windows) == (3, 1, 0)
    feed.send("okx", 1.4, seq=8)
    feed.send("binance", 1.5, seq=6)
    assert feed.merger.statistics().held == 2
    assert feed.merger.statistics().late == 3


def test_without_seq_a_fragment_ingested_before_the_merged_one_is_late(feed: Feed) -> None:
    feed.send("binance", 0.0, seq=None, ingest_ts=500)
    feed.send("okx", 0.0, seq=None, ingest_ts=700)
    feed.expire(1.0)
    feed.send("binance", 1.1, seq=None, ingest_ts=499)
    assert feed.merger.statistics().late == 1
    # A timestamp tie is not late: two updates may share a nanosecond.
    feed.send("binance", 1.2, seq=None, ingest_ts=500)
    assert feed.merger.statistics().late == 1
    assert feed.merger.statistics().held == 1


def test_a_suppressed_window_makes_older_fragments_late_too(feed: Feed) -> None:
    feed.send("binance", 0.0, seq=3)
    feed.expire(1.0)
    assert feed.merger.statistics().suppressed == 1
    feed.send("binance", 1.5, seq=2)
    assert feed.merger.statistics().late == 1


def test_lateness_is_per_provider_and_per_key(feed: Feed) -> None:
    feed.merger.configure(_rule(instrument=_ETH))
    feed.send("binance", 0.0, seq=9)
    feed.send("okx", 0.0, seq=9)
    feed.expire(1.0)
    feed.send("binance", 1.0, seq=1, instrument=_ETH)  # another key: its own marks
    feed.send("okx", 1.0, seq=10)  # newer: not late
    assert feed.merger.statistics().late == 0
    assert feed.merger.statistics().held == 2


def test_an_out_of_order_fragment_inside_an_open_window_is_held_but_not_newest(
    feed: Feed,
) -> None:
    feed.send("binance", 0.0, _ticker("10", "11"), seq=2)
    feed.send("binance", 0.1, _ticker("9", "12"), seq=1)  # older, window still open
    feed.send("okx", 0.2, _ticker("1", "99"), seq=1)
    feed.expire(1.0)
    (top,) = feed.tops()
    assert top.venues[0] == VenueTop(provider="binance", bid=("10", "1"), ask=("11", "2"))
    assert feed.merger.statistics().late == 0


def test_a_repeated_seq_inside_a_window_replaces_the_venues_top(feed: Feed) -> None:
    # A venue may resend an update under the same sequence; the later arrival wins.
    feed.send("binance", 0.0, _ticker("10", "11"), seq=4)
    feed.send("binance", 0.1, _ticker("10.5", "11"), seq=4)
    feed.send("okx", 0.2, _ticker("1", "99"), seq=1)
    feed.expire(1.0)
    (top,) = feed.tops()
    assert top.venues[0].bid == ("10.5", "1")


# -- the merged event ------------------------------------------------------------------------


def test_the_merged_event_fills_every_envelope_field(feed: Feed) -> None:
    feed.merger.configure(_rule(name="btc-top"))
    feed.send(
        "binance", 0.0, _ticker("9.5", "10.5"), ingest_ts=300, trace_id="t-b", routing_version=4
    )
    feed.send("okx", 0.1, _ticker("10.0", "10.4"), ingest_ts=900, trace_id="t-o")
    feed.send("binance", 0.2, _ticker("9.6", "10.6"), ingest_ts=600, trace_id="t-b2")
    feed.expire(1.0)
    (merged,) = feed.emitted
    payload = MergedTopOfBook(
        best_bid=("10.0", "1"),
        best_bid_provider="okx",
        best_ask=("10.4", "2"),
        best_ask_provider="okx",
        venues=(
            VenueTop(provider="binance", bid=("9.6", "1"), ask=("10.6", "2")),
            VenueTop(provider="okx", bid=("10.0", "1"), ask=("10.4", "2")),
        ),
    )
    # routing_version: the highest of the fragments' (the orchestrator stamps it anew).
    expected = (1, Kind.MERGED, "btc-top", _BTC, 1, 900, 0, 4, "t-o", None, SCHEMA_VERSION)
    assert merged.as_tuple() == (*expected, payload, 0)


def test_the_latest_fragment_by_ingest_ts_gives_trace_id_and_a_tie_goes_to_the_later(
    feed: Feed,
) -> None:
    feed.send("okx", 0.0, ingest_ts=50, trace_id="first")
    feed.send("binance", 0.1, ingest_ts=50, trace_id="second")
    feed.send("okx", 0.2, ingest_ts=10, trace_id="older")
    feed.expire(1.0)
    assert (feed.emitted[0].ingest_ts, feed.emitted[0].trace_id) == (50, "second")


def test_merged_seq_counts_per_rule_and_survives_restart_and_replacement(feed: Feed) -> None:
    feed.merger.configure(_rule(instrument=_ETH))
    for start in (0.0, 1.0):
        for instrument in (_BTC, _ETH):
            feed.send("binance", start, instrument=instrument)
            feed.send("okx", start, instrument=instrument)
        feed.expire(start + 1.0)
    feed.merger.restart()
    feed.merger.configure(_rule(window=0.5))
    feed.send("binance", 5.0)
    feed.send("okx", 5.0)
    feed.expire(6.0)
    seqs = [(event.instrument, event.seq) for event in feed.emitted]
    assert seqs == [(_BTC, 1), (_ETH, 1), (_BTC, 2), (_ETH, 2), (_BTC, 3)]
    assert [event.event_id for event in feed.emitted] == [1, 2, 3, 4, 5]


def test_best_prices_compare_as_decimals(feed: Feed) -> None:
    feed.send("binance", 0.0, _ticker("9.5", "10.5"))
    feed.send("okx", 0.0, _ticker("10.0", "9.75"))
    feed.expire(1.0)
    (top,) = feed.tops()
    assert (top.best_bid, top.best_bid_provider) == (("10.0", "1"), "okx")
    assert (top.best_ask, top.best_ask_provider) == (("9.75", "2"), "okx")


def test_book_snapshots_merge_their_first_levels_and_empty_sides_are_none(feed: Feed) -> None:
    feed.merger.configure(_rule(kind=Kind.BOOK_SNAPSHOT, name="btc-book"))

    def book(bids: tuple[Level, ...], asks: tuple[Level, ...]) -> BookSnapshot:
        return BookSnapshot(bids=bids, asks=asks)

    snapshot = Kind.BOOK_SNAPSHOT
    feed.send("binance", 0.0, book((("9", "1"), ("8", "2")), ()), kind=snapshot)
    feed.send("okx", 0.0, book((), (("11", "3"), ("12", "4"))), kind=snapshot)
    feed.expire(1.0)
    (top,) = feed.tops()
    assert top.venues == (
        VenueTop(provider="binance", bid=("9", "1"), ask=None),
        VenueTop(provider="okx", bid=None, ask=("11", "3")),
    )
    assert (top.best_bid, top.best_bid_provider) == (("9", "1"), "binance")
    assert (top.best_ask, top.best_ask_provider) == (("11", "3"), "okx")


# -- several rules and keys ----------------------------------------------------------------


def test_several_keys_merge_independently_and_expire_earliest_first(feed: Feed) -> None:
    feed.merger.configure(_rule(instrument=_ETH, window=0.5, name="eth"))
    feed.merger.configure(_rule(kind=Kind.BOOK_SNAPSHOT, name="btc-book"))
    book = BookSnapshot(bids=(("1", "1"),), asks=(("2", "1"),))
    feed.send("binance", 0.0)
    feed.send("binance", 0.2, instrument=_ETH)
    feed.send("okx", 0.1, book, kind=Kind.BOOK_SNAPSHOT)
    feed.send("okx", 0.3)
    feed.send("okx", 0.4, instrument=_ETH)
    feed.send("binance", 0.4, book, kind=Kind.BOOK_SNAPSHOT)
    assert feed.merger.statistics().open_windows == 3
    assert feed.merger.next_deadline() == pytest.approx(0.7)
    feed.expire(5.0)
    order = [(event.provider, event.instrument) for event in feed.emitted]
    assert order == [("eth", _ETH), ("merged", _BTC), ("btc-book", _BTC)]
    assert feed.merger.statistics().emitted == 3
    assert feed.fragments_out() == 0


def test_events_no_rule_wants_are_not_touched_and_not_duplicated(feed: Feed) -> None:
    trade = Trade(price="1", size="1", side=Side.BUY, trade_id="t", trade_ts=1)
    events = [
        feed.make("binance", 0.0, trade, kind=Kind.TRADE),
        feed.make("binance", 0.0, instrument=_ETH),  # no rule for this instrument
        feed.make("binance", 0.0, BookSnapshot(bids=(), asks=()), kind=Kind.BOOK_SNAPSHOT),
        feed.make("kraken", 0.0),  # the key's rule does not expect this provider
        feed.make("okx", 0.0, trade),  # a ticker without a Ticker payload
    ]
    before = [event.as_tuple() for event in events]
    for event in events:
        feed.merger.offer(event, 0.0, feed.emitted.append)
    assert feed.pool.statistics().acquired == len(events)  # no duplicate was taken
    assert [event.as_tuple() for event in events] == before
    stats = feed.merger.statistics()
    assert (stats.opened, stats.ignored, stats.held) == (0, 2, 0)


def test_the_callers_original_is_never_recycled_or_changed(feed: Feed) -> None:
    feed.merger.configure(_rule(max_count=2))
    first = feed.send("binance", 0.0, trace_id="a")
    second = feed.send("okx", 0.0, trace_id="b")
    snapshot = (first.as_tuple(), second.as_tuple())
    assert len(feed.emitted) == 1
    feed.send("binance", 1.0)
    feed.merger.restart()
    feed.send("okx", 2.0)
    feed.merger.drain()
    # Still readable (a recycled object is poisoned in debug mode) and unchanged.
    assert (first.as_tuple(), second.as_tuple()) == snapshot


# -- restart, drain, rules at runtime --------------------------------------------------------


def test_restart_discards_open_windows_and_never_replays_them(feed: Feed) -> None:
    feed.merger.configure(_rule(instrument=_ETH))
    feed.send("binance", 0.0, seq=10)
    feed.send("okx", 0.0, seq=10)
    feed.send("binance", 0.0, instrument=_ETH)
    feed.merger.restart()
    assert feed.fragments_out() == 0
    assert feed.merger.next_deadline() == math.inf
    feed.expire(100.0)
    assert feed.emitted == []
    stats = feed.merger.statistics()
    assert (stats.discarded_on_restart, stats.fragments_discarded, stats.held) == (2, 3, 0)
    assert stats.opened == stats.discarded_on_restart


def test_restart_forgets_late_marks(feed: Feed) -> None:
    feed.send("binance", 0.0, seq=10)
    feed.send("okx", 0.0, seq=10)
    feed.expire(1.0)
    feed.merger.restart()  # e.g. venues reconnected and their sequences started again
    feed.send("binance", 2.0, seq=1)
    assert feed.merger.statistics().late == 0
    assert feed.merger.statistics().held == 1


def test_drain_recycles_everything_held(feed: Feed) -> None:
    feed.send("binance", 0.0)
    feed.send("okx", 0.0, instrument=_ETH)
    feed.merger.configure(_rule(instrument=_ETH))
    feed.send("okx", 0.0, instrument=_ETH)
    feed.merger.drain()
    assert feed.fragments_out() == 0
    stats = feed.merger.statistics()
    assert (stats.drained, stats.open_windows, stats.held) == (2, 0, 0)


def test_rules_are_added_replaced_and_removed_at_runtime(feed: Feed) -> None:
    merger = feed.merger
    assert merger.configure(_rule()) == _rule()  # identical: nothing changes
    feed.send("binance", 0.0)
    assert merger.configure(_rule()) == _rule()
    assert merger.statistics().held == 1
    assert merger.configure(_rule(window=2.0)) == _rule()  # replaced: window discarded
    assert merger.statistics().discarded_on_reconfigure == 1
    assert merger.configure(_rule(instrument=_ETH, name="eth")) is None
    feed.send("binance", 0.0, instrument=_ETH)
    assert merger.remove("eth").instrument == _ETH
    assert merger.remove((_BTC, "ticker")) == _rule(window=2.0)
    assert merger.rules() == ()
    stats = merger.statistics()
    assert (stats.rules, stats.discarded_on_reconfigure, stats.held) == (0, 2, 0)
    feed.send("binance", 1.0)
    assert merger.statistics().opened == 2
    with pytest.raises(KeyError, match="no merge rule named 'eth'"):
        merger.remove("eth")
    with pytest.raises(KeyError, match="no merge rule for ticker BTC-USDT"):
        merger.remove((_BTC, Kind.TICKER))


def test_replacing_a_rule_forgets_its_late_marks(feed: Feed) -> None:
    feed.send("binance", 0.0, seq=5)
    feed.expire(1.0)
    feed.merger.configure(_rule(window=0.5))
    feed.send("binance", 2.0, seq=1)
    assert feed.merger.statistics().late == 0


def test_rule_names_and_merged_streams_must_be_unique(recycler: Recycler) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=4, name="merge")
    merger = Merger(pool, recycler, [_rule(name="top")])
    with pytest.raises(ConfigError, match="'top' is taken") as caught:
        merger.configure(_rule(instrument=_ETH, name="top"))
    assert caught.value.key == "name"
    merger.configure(_rule(kind=Kind.BOOK_SNAPSHOT))  # unnamed: emits as "merged"
    with pytest.raises(ConfigError, match="give one of them a name"):
        merger.configure(_rule(kind=Kind.TICKER, name="merged"))
    with pytest.raises(ConfigError, match="two rules for ticker BTC-USDT"):
        Merger(pool, recycler, [_rule(), _rule(window=3.0)])
    with pytest.raises(ConfigError, match="give one of them a name"):
        Merger(pool, recycler, [_rule(), _rule(kind=Kind.BOOK_SNAPSHOT)])
    assert Merger(pool, recycler).rules() == ()


# -- pool, emit failures, statistics ----------------------------------------------------------


def test_a_short_pool_skips_the_fragment_and_counts_it(recycler: Recycler) -> None:
    pool = EventPool(Event, recycler=recycler, capacity=4, name="tight")
    merger = Merger(pool, recycler, [_rule()])
    emitted: list[Event] = []
    originals = [pool.acquire_nowait() for _ in range(4)]
    try:
        for event, provider in zip(originals, ("binance", "okx", "-", "-"), strict=True):
            event.kind, event.instrument, event.provider = Kind.TICKER, _BTC, provider
            event.payload = _ticker()
        merger.offer(originals[0], 0.0, emitted.append)  # every envelope is lent: skipped
        assert merger.statistics().pool_short == 1
        assert merger.statistics().open_windows == 0
        recycler.recycle(originals.pop())
        merger.offer(originals[0], 0.0, emitted.append)
        recycler.recycle(originals.pop())
        merger.offer(originals[1], 0.0, emitted.append)
        # Every envelope is lent again; closing still finds one for the merged event.
        assert pool.available() == 0
        merger.expire(1.0, emitted.append)
        assert len(emitted) == 1
        assert merger.statistics().pool_short == 1
    finally:
        recycler.recycle_all([*originals, *emitted])


def test_an_emit_that_raises_leaves_the_merger_consistent(feed: Feed) -> None:
    feed.merger.configure(_rule(max_count=2))
    feed.send("binance", 0.0)

    def explode(event: Event) -> None:
        feed.emitted.append(event)  # it owns the event, then fails
        raise RuntimeError("consumer side blew up")

    original = feed.make("okx", 0.0)
    with pytest.raises(RuntimeError, match="blew up"):
        feed.merger.offer(original, 0.0, explode)
    stats = feed.merger.statistics()
    assert (stats.closed_by_count, stats.emitted, stats.open_windows) == (1, 1, 0)
    assert feed.fragments_out() == 0


def test_watermark_lag_is_how_far_the_oldest_open_window_is_behind(feed: Feed) -> None:
    feed.merger.configure(_rule(instrument=_ETH, window=10.0))
    assert feed.merger.statistics().watermark_lag == 0.0
    feed.send("binance", 1.0, instrument=_ETH)
    feed.send("binance", 1.5)
    feed.expire(1.75)
    assert feed.merger.statistics().watermark_lag == pytest.approx(0.75)
    feed.expire(3.0)  # BTC closed; ETH (opened at 1.0) is still open
    assert feed.merger.statistics().watermark_lag == pytest.approx(2.0)
    feed.merger.restart()
    assert feed.merger.statistics().watermark_lag == 0.0
