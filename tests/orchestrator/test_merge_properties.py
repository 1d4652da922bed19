"""Hypothesis: random interleavings of fragments, expiries and restarts against the Merger.

Three angles:

- invariants under any interleaving: nothing partial is ever emitted, every duplicate
  goes back exactly once, and the counters add up;
- what a key emits does not depend on how often ``expire`` is called;
- a state machine against a plain model of the windows, their late marks and the
  merged tops they must produce.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any, Final

import attrs
import hypothesis.strategies as st
from hypothesis import given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from meltica_trio import Event, EventPool, Kind, MergedTopOfBook, Recycler, Ticker, VenueTop
from meltica_trio.orchestrator import Merger, MergeRule, MergeStatistics

_PROVIDERS: Final = ("a", "b", "c", "d")
_INSTRUMENTS: Final = ("BTC-USDT", "ETH-USDT", "SOL-USDT")
# Equal prices in different spellings, and values that sort wrongly as text.
_PRICES: Final = ("9.5", "9.50", "10", "10.0", "11", "100")


def _ticker(bid: str, ask: str) -> Ticker:
    return Ticker(bid_price=bid, bid_size="1", ask_price=ask, ask_size="1")


def _balanced(stats: MergeStatistics) -> bool:
    ended = stats.closed + stats.discarded_on_restart + stats.discarded_on_reconfigure
    return (
        stats.opened == ended + stats.drained + stats.open_windows
        and stats.emitted + stats.suppressed == stats.closed
    )


@attrs.frozen
class _Fragment:
    instrument: str
    provider: str
    seq: int | None
    ingest_ts: int
    bid: str
    ask: str


@attrs.frozen
class _Step:
    """Advance the clock by ``dt``, then offer ``fragment``, expire, or restart."""

    dt: float
    fragment: _Fragment | None = None
    restart: bool = False


# Weighted by repetition: mostly expected providers and instruments with a rule, and
# small steps of time, so that most windows get a chance to complete.
_instruments = st.sampled_from(("BTC-USDT", "BTC-USDT", "ETH-USDT", "ETH-USDT", "SOL-USDT"))
_providers = st.sampled_from(("a", "a", "a", "b", "b", "b", "c", "c", "c", "d"))
_fragments = st.builds(
    _Fragment,
    instrument=_instruments,
    provider=_providers,
    seq=st.none() | st.integers(min_value=0, max_value=12),
    ingest_ts=st.integers(min_value=0, max_value=12),
    bid=st.sampled_from(_PRICES),
    ask=st.sampled_from(_PRICES),
)
_offer_dts = st.sampled_from((0.0, 0.0, 0.05, 0.1, 0.2, 0.6))
_expire_dts = st.sampled_from((0.0, 0.3, 1.0, 3.0))


@st.composite
def _steps(draw: st.DrawFn, *, restarts: bool = True) -> _Step:
    """Seven offers, two expiries and one restart in ten, roughly."""
    roll = draw(st.integers(min_value=0, max_value=9))
    if roll == 0 and restarts:
        return _Step(0.0, restart=True)
    if roll <= 2:
        return _Step(draw(_expire_dts))
    return _Step(draw(_offer_dts), draw(_fragments))


@st.composite
def _rules(draw: st.DrawFn) -> list[MergeRule]:
    """One or two rules (SOL-USDT never has one), with random providers and bounds."""
    instruments = draw(st.sets(st.sampled_from(_INSTRUMENTS[:2]), min_size=1))
    rules = []
    for instrument in sorted(instruments):
        providers = draw(st.sets(st.sampled_from(_PROVIDERS[:3]), min_size=2))
        rules.append(
            MergeRule(
                instrument=instrument,
                kind=Kind.TICKER,
                providers=providers,
                window=draw(st.sampled_from((0.5, 1.0, 2.5))),
                max_count=len(providers) + draw(st.integers(min_value=0, max_value=6)),
            )
        )
    return rules


@attrs.define(eq=False)
class _Run:
    """Plays steps into a fresh merger with a debug recycler, recycling as the pipeline would."""

    rules: list[MergeRule]
    recycler: Recycler = attrs.field(factory=lambda: Recycler(debug=True))
    pool: EventPool[Event] = attrs.field(init=False)
    merger: Merger = attrs.field(init=False)
    now: float = 0.0
    offered: int = 0
    emitted: dict[str, list[tuple[Any, ...]]] = attrs.field(factory=lambda: defaultdict(list))

    def __attrs_post_init__(self) -> None:
        self.pool = EventPool(Event, recycler=self.recycler, capacity=256, name="prop")
        self.merger = Merger(self.pool, self.recycler, self.rules)

    def emit(self, event: Event) -> None:
        payload = event.payload
        assert event.kind is Kind.MERGED
        assert isinstance(payload, MergedTopOfBook)
        (rule,) = [r for r in self.rules if r.instrument == event.instrument]
        assert {venue.provider for venue in payload.venues} == rule.providers
        record = (event.seq, event.ingest_ts, event.trace_id, payload)
        self.emitted[event.instrument].append(record)
        self.recycler.recycle(event)  # the caller owns it: done with it

    def play(self, step: _Step) -> None:
        self.now += step.dt
        if step.restart:
            self.merger.restart()
        elif step.fragment is None:
            self.merger.expire(self.now, self.emit)
        else:
            original = self._original(step.fragment)
            self.offered += 1
            self.merger.offer(original, self.now, self.emit)
            # The original goes on downstream; recycling it at once proves the
            # merger kept a duplicate, not the original (debug mode poisons it).
            self.recycler.recycle(original)
        assert self.pool.statistics().in_use == self.merger.statistics().held

    def _original(self, fragment: _Fragment) -> Event:
        event = self.pool.acquire_nowait()
        event.kind = Kind.TICKER
        event.instrument = fragment.instrument
        event.provider = fragment.provider
        event.seq = fragment.seq
        event.ingest_ts = fragment.ingest_ts
        event.trace_id = f"{fragment.provider}-{fragment.seq}-{fragment.ingest_ts}"
        event.payload = _ticker(fragment.bid, fragment.ask)
        return event


@settings(max_examples=200, deadline=None)
@given(_rules(), st.lists(_steps(), min_size=30, max_size=120), st.booleans())
def test_no_partial_merge_every_duplicate_back_once_and_counters_add_up(
    rules: list[MergeRule], steps: list[_Step], time_runs_out: bool
) -> None:
    run = _Run(rules)
    for step in steps:
        run.play(step)
        assert _balanced(run.merger.statistics())
    if time_runs_out:  # else the drain below finds the open windows
        run.merger.expire(math.inf, run.emit)
    run.merger.drain()
    stats = run.merger.statistics()
    assert _balanced(stats)
    assert (stats.open_windows, stats.held, stats.pool_short) == (0, 0, 0)
    assert stats.emitted == sum(len(records) for records in run.emitted.values())
    # Every lease back exactly once: a second recycle would have raised DoublePutError.
    assert not run.recycler.leak_report(), str(run.recycler.leak_report())
    # Nothing is lent but originals, fragment duplicates and merged events.
    pool = run.pool.statistics()
    assert pool.acquired == pool.recycled == run.offered + stats.fragments + stats.emitted
    assert run.recycler.statistics().double_puts == 0


@settings(max_examples=150, deadline=None)
@given(_rules(), st.lists(_steps(restarts=False), min_size=30, max_size=120))
def test_what_a_key_emits_does_not_depend_on_how_often_expire_is_called(
    rules: list[MergeRule], steps: list[_Step]
) -> None:
    frequent, rare = _Run(rules), _Run(rules)
    for step in steps:
        frequent.play(step)
        if step.fragment is not None:
            rare.play(step)
        else:
            rare.now += step.dt  # the same clock, no expire call
    for run in (frequent, rare):
        run.merger.expire(math.inf, run.emit)
        assert not run.recycler.leak_report()
    assert frequent.emitted == rare.emitted
    # Only the moment of a time close moves; what was opened, closed and judged late does not.
    ignore = {"watermark_lag"}
    counters = [
        attrs.asdict(r.merger.statistics(), filter=lambda a, _: a.name not in ignore)
        for r in (frequent, rare)
    ]
    assert counters[0] == counters[1]


# -- a state machine against a model -------------------------------------------------------

_MODEL_RULES: Final = (
    MergeRule(
        instrument="BTC-USDT", kind=Kind.TICKER, providers={"a", "b"}, window=1.0, max_count=3
    ),
    MergeRule(
        instrument="ETH-USDT", kind=Kind.TICKER, providers={"a", "b", "c"}, window=1.5, max_count=4
    ),
)


@attrs.define
class _ModelWindow:
    deadline: float
    fragments: list[_Fragment] = attrs.field(factory=list)


def _seq(fragment: _Fragment) -> int:
    assert fragment.seq is not None  # the machine always numbers its fragments
    return fragment.seq


def _model_top(fragments: list[_Fragment]) -> MergedTopOfBook:
    """The expected payload, computed another way than the merger does."""
    newest: dict[str, _Fragment] = {}
    for fragment in fragments:  # a later arrival wins a tie
        current = newest.get(fragment.provider)
        if current is None or _seq(fragment) >= _seq(current):
            newest[fragment.provider] = fragment
    ordered = sorted(newest.values(), key=lambda f: f.provider)
    # max() and min() return the first of equal candidates: the provider sorting first.
    best_bid = max(ordered, key=lambda f: Decimal(f.bid))
    best_ask = min(ordered, key=lambda f: Decimal(f.ask))
    return MergedTopOfBook(
        best_bid=(best_bid.bid, "1"),
        best_bid_provider=best_bid.provider,
        best_ask=(best_ask.ask, "1"),
        best_ask_provider=best_ask.provider,
        venues=tuple(
            VenueTop(provider=f.provider, bid=(f.bid, "1"), ask=(f.ask, "1")) for f in ordered
        ),
    )


class MergeMachine(RuleBasedStateMachine):
    """Model: open windows per instrument, late marks per (instrument, provider)."""

    def __init__(self) -> None:
        super().__init__()
        self.run = _Run(list(_MODEL_RULES))
        self.rule_for = {r.instrument: r for r in _MODEL_RULES}
        self.windows: dict[str, _ModelWindow] = {}
        self.marks: dict[tuple[str, str], int] = {}
        self.last_seq: Counter[tuple[str, str]] = Counter()
        self.expected: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.counts: Counter[str] = Counter()

    @rule(
        instrument=_instruments,
        provider=_providers,
        dt=_offer_dts,
        step=st.sampled_from((-1, 0, 1, 1, 1, 2)),
        ingest_ts=st.integers(min_value=0, max_value=5),
        bid=st.sampled_from(_PRICES),
        ask=st.sampled_from(_PRICES),
    )
    def offer(
        self,
        instrument: str,
        provider: str,
        dt: float,
        step: int,
        ingest_ts: int,
        bid: str,
        ask: str,
    ) -> None:
        seq = self.last_seq[instrument, provider] = self.last_seq[instrument, provider] + step
        fragment = _Fragment(instrument, provider, seq, ingest_ts, bid, ask)
        self.run.play(_Step(dt, fragment))
        self._model_offer(fragment)

    @rule(dt=_expire_dts)
    def expire(self, dt: float) -> None:
        self.run.play(_Step(dt))
        due = [(i, w) for i, w in self.windows.items() if w.deadline <= self.run.now]
        for instrument, _ in sorted(due, key=lambda item: item[1].deadline):
            self._model_close(instrument, "closed_by_time")

    @rule(roll=st.integers(min_value=0, max_value=3))
    def restart(self, roll: int) -> None:
        if roll:  # one draw in four: restarts are rare next to offers and expiries
            return
        self.run.play(_Step(0.0, restart=True))
        self.counts["discarded_on_restart"] += len(self.windows)
        self.windows.clear()
        self.marks.clear()

    def _model_offer(self, fragment: _Fragment) -> None:
        rule = self.rule_for.get(fragment.instrument)
        if rule is None:
            return
        if fragment.provider not in rule.providers:
            self.counts["ignored"] += 1
            return
        window = self.windows.get(fragment.instrument)
        if window is not None and self.run.now >= window.deadline:
            self._model_close(fragment.instrument, "closed_by_time")
        mark = self.marks.get((fragment.instrument, fragment.provider))
        if mark is not None and _seq(fragment) <= mark:
            self.counts["late"] += 1
            return
        if fragment.instrument not in self.windows:
            self.windows[fragment.instrument] = _ModelWindow(self.run.now + rule.window)
            self.counts["opened"] += 1
        window = self.windows[fragment.instrument]
        window.fragments.append(fragment)
        if len(window.fragments) == rule.max_count:
            self._model_close(fragment.instrument, "closed_by_count")

    def _model_close(self, instrument: str, how: str) -> None:
        window = self.windows.pop(instrument)
        self.counts[how] += 1
        for fragment in window.fragments:
            key = (instrument, fragment.provider)
            self.marks[key] = max(self.marks.get(key, _seq(fragment)), _seq(fragment))
        if {f.provider for f in window.fragments} != self.rule_for[instrument].providers:
            self.counts["suppressed"] += 1
            return
        self.counts["emitted"] += 1
        latest = max(reversed(window.fragments), key=lambda f: f.ingest_ts)
        seq = len(self.expected[instrument]) + 1
        trace = f"{latest.provider}-{latest.seq}-{latest.ingest_ts}"
        self.expected[instrument].append(
            (seq, latest.ingest_ts, trace, _model_top(window.fragments))
        )

    @invariant()
    def emitted_what_the_model_expects(self) -> None:
        assert dict(self.run.emitted) == dict(self.expected)

    @invariant()
    def counters_match_the_model(self) -> None:
        stats = self.run.merger.statistics()
        for name in (
            "opened",
            "closed_by_time",
            "closed_by_count",
            "emitted",
            "suppressed",
            "late",
            "ignored",
            "discarded_on_restart",
        ):
            assert getattr(stats, name) == self.counts[name], name
        assert stats.open_windows == len(self.windows)
        assert stats.held == sum(len(w.fragments) for w in self.windows.values())
        assert _balanced(stats)

    def teardown(self) -> None:
        self.run.merger.drain()
        assert not self.run.recycler.leak_report(), str(self.run.recycler.leak_report())


TestMergeMachine = MergeMachine.TestCase
TestMergeMachine.settings = settings(max_examples=100, stateful_step_count=60, deadline=None)
