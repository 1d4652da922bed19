"""The windowed merge: one event per key and window from fragments of several venues.

The :class:`Merger` is sans-clock, like the dispatcher's ordering stage: every call
takes ``now`` (seconds on the trio clock, ``trio.current_time()`` in the caller) and
an ``emit`` callback, so tests drive windows with plain floats.

**Fragments.** An event is a fragment when a rule has its key (instrument, kind)
and expects its provider. The merger takes a pooled duplicate of it; the caller
keeps the original, which goes on to subscribers unchanged. Events of other keys
are not touched at all; those of a rule's key from a provider it does not expect,
or with a payload of the wrong class, are left alone and counted as ``ignored``.

**Windows.** A key's window opens on its first fragment, at ``now``, and closes

- by time, once ``now >= opened + rule.window``: in :meth:`Merger.expire`, or in
  :meth:`Merger.offer` when the key's next fragment finds its window due (the
  window closes first, then the fragment is judged and opens the next one), so
  what is emitted never depends on how often ``expire`` is called;
- by count, on the fragment that brings it to ``rule.max_count``, at once.

At close, a window in which every expected provider contributed becomes ONE
merged event (kind ``MERGED``) whose payload is a :class:`MergedTopOfBook` of each
venue's newest top; any other window is suppressed: nothing is emitted, never a
partial. Either way the window's fragments are recycled before ``emit`` is
called, and a merged event is owned by ``emit`` from the call on.

**The newest fragment** of a provider is the one with the highest ``seq``; where
either of two fragments has no ``seq``, the higher ``ingest_ts``; on a tie, the
later arrival. A venue's top in the merged event is its newest fragment in the
window; the merged event takes ``ingest_ts`` and ``trace_id`` from the fragment
with the highest ``ingest_ts`` (the later arrival on a tie).

**Late fragments.** When a window closes (emitted or suppressed), the merger
remembers, per key and provider, the newest fragment that provider put into it.
A fragment is *late*, and dropped, when its provider's remembered fragment is at
least as new: its ``seq`` is at or below the remembered ``seq`` (both have one),
or else its ``ingest_ts`` is before the remembered ``ingest_ts``. Such a fragment
was produced before data of its own venue that is already merged, so it belongs to
a window already closed; merging it later would move the consolidated view
backwards. The judgement uses only the provider's own sequence (or timestamps),
never the trio clock against the wall clock. What is remembered lasts until
:meth:`Merger.restart`, or until the key's rule is removed or replaced.

**Restart and shutdown.** :meth:`Merger.restart` discards every open window (their
fragments are recycled, never replayed) and forgets the late marks; merged
sequence numbers keep counting, since downstream ordering drops a ``MERGED``
event whose ``seq`` is not above the last. :meth:`Merger.drain` recycles what is
held for good.

**Pool.** A fragment duplicate the pool cannot lend at once is not taken (counted as
``pool_short``); the window may be suppressed for it. Closing a complete window
always finds an envelope: its fragments go back before the merged event's
envelope is acquired.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Final

import attrs
import trio

from meltica_trio._defaults import SCHEMA_VERSION
from meltica_trio.events import BookSnapshot, Event, Kind, MergedTopOfBook, Ticker, VenueTop
from meltica_trio.lifecycle import EventPool, Recycler

from ._rule import MergeRule, RuleKey, check_clash, index_rules
from ._statistics import MergeStatistics
from ._top import consolidate, venue_top

_MERGED: Final = Kind.MERGED
_FRAGMENT_PAYLOAD: Final[Mapping[Kind, type[Ticker | BookSnapshot]]] = MappingProxyType(
    {Kind.TICKER: Ticker, Kind.BOOK_SNAPSHOT: BookSnapshot}
)
"""The payload class a fragment of each mergeable kind must carry."""

Emit = Callable[[Event], None]
"""Receives each merged event, and with it the ownership of its envelope."""

_Mark = tuple[int | None, int]
"""(seq, ingest_ts) of a provider's newest fragment in a key's last closed window."""
_MarkKey = tuple[str, Kind, str]
"""(instrument, kind, provider)."""


@attrs.define(eq=False)
class _Window:
    rule: MergeRule
    opened: float
    deadline: float
    fragments: list[Event] = attrs.field(factory=list)
    seen: set[str] = attrs.field(factory=set)


def _not_older(seq: int | None, ingest_ts: int, than: _Mark) -> bool:
    """Whether a fragment with ``seq`` and ``ingest_ts`` is at least as new as ``than``."""
    than_seq, than_ts = than
    if seq is not None and than_seq is not None:
        return seq >= than_seq
    return ingest_ts >= than_ts


def _newest_by_provider(fragments: Iterable[Event]) -> dict[str, Event]:
    newest: dict[str, Event] = {}
    for fragment in fragments:  # arrival order: a later arrival wins a tie
        current = newest.get(fragment.provider)
        if current is None or _not_older(
            fragment.seq, fragment.ingest_ts, (current.seq, current.ingest_ts)
        ):
            newest[fragment.provider] = fragment
    return newest


def _latest(fragments: list[Event]) -> Event:
    """The fragment with the highest ``ingest_ts``; the later arrival on a tie."""
    latest = fragments[0]
    for fragment in fragments:
        if fragment.ingest_ts >= latest.ingest_ts:
            latest = fragment
    return latest


def _venue_top(fragment: Event) -> VenueTop:
    payload = fragment.payload
    # offer() admits only fragments whose payload is their kind's class.
    assert isinstance(payload, Ticker | BookSnapshot)
    return venue_top(fragment.provider, payload)


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class Merger:
    """Merges fragments of the same key across venues, one window at a time.

    See the module docstring for windows, late fragments and ownership.

    Args:
        pool: lends fragment duplicates and merged events.
        recycler: takes fragments back.
        rules: the initial merge rules; at most one per key.
        next_event_id: mints each merged event's ``event_id``; pass the source the
            rest of the process uses, so ids stay unique. A private counter if omitted.

    Raises:
        ConfigError: two rules share a key, a name, or a merged stream.
    """

    pool: EventPool[Event]
    recycler: Recycler
    _rules: dict[RuleKey, MergeRule] = attrs.field(
        default=(), converter=index_rules, alias="rules"
    )
    next_event_id: Callable[[], int] = attrs.field(
        kw_only=True, factory=lambda: itertools.count(1).__next__
    )

    _kinds: frozenset[Kind] = attrs.field(init=False)
    _windows: dict[RuleKey, _Window] = attrs.field(init=False, factory=dict)
    _marks: dict[_MarkKey, _Mark] = attrs.field(init=False, factory=dict)
    _merged_seq: dict[tuple[str, str], int] = attrs.field(init=False, factory=dict)
    _now: float = attrs.field(init=False, default=-math.inf)
    _opened: int = attrs.field(init=False, default=0)
    _by_time: int = attrs.field(init=False, default=0)
    _by_count: int = attrs.field(init=False, default=0)
    _emitted: int = attrs.field(init=False, default=0)
    _suppressed: int = attrs.field(init=False, default=0)
    _fragments: int = attrs.field(init=False, default=0)
    _late: int = attrs.field(init=False, default=0)
    _ignored: int = attrs.field(init=False, default=0)
    _pool_short: int = attrs.field(init=False, default=0)
    _on_restart: int = attrs.field(init=False, default=0)
    _on_reconfigure: int = attrs.field(init=False, default=0)
    _drained: int = attrs.field(init=False, default=0)
    _fragments_discarded: int = attrs.field(init=False, default=0)

    @_kinds.default
    def _rule_kinds(self) -> frozenset[Kind]:
        return frozenset(kind for _, kind in self._rules)

    # -- rules ----------------------------------------------------------------------

    def rules(self) -> tuple[MergeRule, ...]:
        """The rules configured now."""
        return tuple(self._rules.values())

    def configure(self, rule: MergeRule) -> MergeRule | None:
        """Add ``rule``, or replace the rule of its key; returns the rule replaced.

        Replacing a rule with a different one discards the key's open window and
        forgets its late marks; configuring an identical rule changes nothing.

        Raises:
            ConfigError: another rule has its name, or its merged stream.
        """
        old = self._rules.get(rule.key)
        if old == rule:
            return old
        check_clash((r for r in self._rules.values() if r.key != rule.key), rule)
        if old is not None:
            self._forget(rule.key)
        self._rules[rule.key] = rule
        self._kinds = self._rule_kinds()
        return old

    def remove(self, name_or_key: str | tuple[str, Kind | str]) -> MergeRule:
        """Remove the rule with this name or (instrument, kind) key; returns it.

        The kind may be given as its wire name (``("BTC-USDT", "ticker")``). The
        rule's open window is discarded and its late marks are forgotten.

        Raises:
            KeyError: no rule has this name or key.
        """
        if isinstance(name_or_key, str):
            found = [r for r in self._rules.values() if r.name == name_or_key]
            if not found:
                raise KeyError(f"no merge rule named {name_or_key!r}")
            key = found[0].key
        else:
            key = (name_or_key[0], Kind(name_or_key[1]))
            if key not in self._rules:
                raise KeyError(f"no merge rule for {key[1].value} {key[0]}")
        self._forget(key)
        rule = self._rules.pop(key)
        self._kinds = self._rule_kinds()
        return rule

    def _forget(self, key: RuleKey) -> None:
        window = self._windows.pop(key, None)
        if window is not None:
            self._on_reconfigure += 1
            self._discard([window])
        instrument, kind = key
        for mark in [m for m in self._marks if m[0] == instrument and m[1] is kind]:
            del self._marks[mark]

    # -- merging --------------------------------------------------------------------

    def offer(self, event: Event, now: float, emit: Emit) -> None:
        """Take a duplicate of ``event`` into its key's window if it is a fragment.

        The caller keeps ``event`` whatever happens. A window that closes during the
        call (its time was up, or this fragment completed its count) is emitted or
        suppressed before the call returns.

        Args:
            event: any event; only fragments of a rule are taken.
            now: the trio clock, seconds.
            emit: receives (and owns) each merged event.
        """
        kind = event.kind
        if kind not in self._kinds:
            return
        key = (event.instrument, kind)
        rule = self._rules.get(key)
        if rule is None:
            return
        self._now = now
        if event.provider not in rule.providers or not isinstance(
            event.payload, _FRAGMENT_PAYLOAD[kind]
        ):
            self._ignored += 1
            return
        window = self._windows.get(key)
        if window is not None and now >= window.deadline:
            self._close(key, window, emit, by_count=False)
            window = None
        if self._is_late(event):
            self._late += 1
            return
        try:
            fragment = self.pool.duplicate_nowait(event)
        except trio.WouldBlock:
            self._pool_short += 1
            return
        if window is None:
            window = self._windows[key] = _Window(rule, now, now + rule.window)
            self._opened += 1
        self._fragments += 1
        window.fragments.append(fragment)
        window.seen.add(fragment.provider)
        if len(window.fragments) >= rule.max_count:
            self._close(key, window, emit, by_count=True)

    def _is_late(self, event: Event) -> bool:
        mark = self._marks.get((event.instrument, event.kind, event.provider))
        if mark is None:
            return False
        mark_seq, mark_ts = mark
        if event.seq is not None and mark_seq is not None:
            return event.seq <= mark_seq
        return event.ingest_ts < mark_ts

    def next_deadline(self) -> float:
        """When the earliest open window's time is up, or ``math.inf`` with none open."""
        return min((window.deadline for window in self._windows.values()), default=math.inf)

    def expire(self, now: float, emit: Emit) -> None:
        """Close every window whose time is up at ``now``, earliest deadline first."""
        self._now = now
        due = [(key, w) for key, w in self._windows.items() if w.deadline <= now]
        due.sort(key=lambda item: item[1].deadline)
        for key, window in due:
            self._close(key, window, emit, by_count=False)

    def _close(self, key: RuleKey, window: _Window, emit: Emit, *, by_count: bool) -> None:
        del self._windows[key]
        if by_count:
            self._by_count += 1
        else:
            self._by_time += 1
        newest = _newest_by_provider(window.fragments)
        instrument, kind = key
        for provider, fragment in newest.items():
            self._marks[instrument, kind, provider] = (fragment.seq, fragment.ingest_ts)
        if window.seen < window.rule.providers:
            self.recycler.recycle_all(window.fragments)
            self._suppressed += 1
            return
        payload = consolidate(_venue_top(fragment) for fragment in newest.values())
        latest = _latest(window.fragments)
        ingest_ts, trace_id = latest.ingest_ts, latest.trace_id
        routing_version = max(fragment.routing_version for fragment in window.fragments)
        # Back before the acquire: the merged envelope can always be lent.
        self.recycler.recycle_all(window.fragments)
        merged = self._merged_event(window.rule, payload, ingest_ts, trace_id, routing_version)
        self._emitted += 1
        emit(merged)

    def _merged_event(
        self,
        rule: MergeRule,
        payload: MergedTopOfBook,
        ingest_ts: int,
        trace_id: str | None,
        routing_version: int,
    ) -> Event:
        stream = (rule.provider, rule.instrument)
        seq = self._merged_seq.get(stream, 0) + 1
        self._merged_seq[stream] = seq
        event = self.pool.acquire_nowait()
        event.event_id = self.next_event_id()
        event.kind = _MERGED
        event.provider = rule.provider
        event.instrument = rule.instrument
        event.seq = seq
        event.ingest_ts = ingest_ts
        event.emit_ts = 0
        event.routing_version = routing_version
        event.trace_id = trace_id
        event.decision_id = None
        event.schema_version = SCHEMA_VERSION
        event.payload = payload
        event.skipped = 0
        return event

    # -- restart and shutdown ---------------------------------------------------------

    def restart(self) -> None:
        """Discard every open window, recycling its fragments; forget the late marks.

        Discarded windows are never replayed. Rules and merged sequence numbers stay.
        """
        windows = list(self._windows.values())
        self._windows.clear()
        self._marks.clear()
        self._on_restart += len(windows)
        self._discard(windows)

    def drain(self) -> None:
        """Recycle every fragment held, for shutdown; the merger is empty afterwards."""
        windows = list(self._windows.values())
        self._windows.clear()
        self._drained += len(windows)
        self._discard(windows)

    def _discard(self, windows: list[_Window]) -> None:
        fragments = [fragment for window in windows for fragment in window.fragments]
        self._fragments_discarded += len(fragments)
        self.recycler.recycle_all(fragments)

    # -- observing --------------------------------------------------------------------

    def statistics(self) -> MergeStatistics:
        """A snapshot of the merge counters."""
        windows = self._windows.values()
        oldest = min((window.opened for window in windows), default=None)
        return MergeStatistics(
            rules=len(self._rules),
            opened=self._opened,
            closed_by_time=self._by_time,
            closed_by_count=self._by_count,
            emitted=self._emitted,
            suppressed=self._suppressed,
            fragments=self._fragments,
            late=self._late,
            ignored=self._ignored,
            pool_short=self._pool_short,
            discarded_on_restart=self._on_restart,
            discarded_on_reconfigure=self._on_reconfigure,
            drained=self._drained,
            fragments_discarded=self._fragments_discarded,
            open_windows=len(self._windows),
            held=sum(len(window.fragments) for window in windows),
            watermark_lag=0.0 if oldest is None else max(0.0, self._now - oldest),
        )
