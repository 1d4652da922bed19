"""Per-stream ordering: a stream is (provider, instrument, kind); no global order.

Each stream is handled by the first rule that fits:

- Critical kinds pass straight through, in arrival order: ordering never drops them.
- **Contiguous**: a ``BOOK_DELTA`` with ``prev_seq`` (the venue guarantees contiguous
  sequences). A delta whose ``prev_seq`` is not the last ``seq`` is a gap: it is
  dropped, later deltas of that book are dropped until a ``BOOK_SNAPSHOT`` of the
  book passes (it re-anchors the sequence), and the source is asked to resync.
- **Reorder window**: other ``SEQUENCED`` kinds with a ``seq``. Events are released
  in ``seq`` order. One that leaves a hole is held, up to ``window`` events and
  ``max_lateness`` seconds on the trio clock, for the missing ones; past either
  bound the hole is given up. A stream's first events are held the same way, so an
  early out-of-order arrival is not mistaken for a stale one.
- A ``BOOK_STATUS`` event resets its book's sequence (a resync or reconnect may
  restart it lower than before): its deltas wait for the next snapshot.
- **Newest only**: ``LATEST`` kinds, and anything without a ``seq`` (ordered by
  ``ingest_ts``): released at once when newer than the last released, else dropped.

Stale duplicates (a key at or below the last released) are dropped and counted.
A stream's state outlives quiet periods and is forgotten after ``idle_ttl``
seconds without events.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from typing import Final

import attrs

from meltica_trio.events import CRITICAL_KINDS, LATEST_KINDS, BookDelta, Event, Kind
from meltica_trio.lifecycle import Recycler

_BOOK_DELTA: Final = Kind.BOOK_DELTA
_BOOK_SNAPSHOT: Final = Kind.BOOK_SNAPSHOT
_BOOK_STATUS: Final = Kind.BOOK_STATUS

StreamKey = tuple[str, str, Kind]
"""(provider, instrument, kind)."""
Release = Callable[[Event], None]
GapReport = Callable[[str, str, str], None]
"""Called with (provider, instrument, reason) when a contiguous stream breaks."""


@attrs.frozen(kw_only=True)
class OrderingStatistics:
    """Counters of the ordering stage.

    Attributes:
        streams: streams with state now.
        held: events held in reorder windows now.
        released: events released downstream.
        stale_dropped: stale duplicates dropped (key at or below the last released).
        gaps: contiguity breaks detected.
        gap_dropped: deltas dropped at a gap or while awaiting a snapshot.
        holes_skipped: holes given up on at the window or lateness bound.
        expired_streams: streams forgotten after their idle TTL.
    """

    streams: int
    held: int
    released: int
    stale_dropped: int
    gaps: int
    gap_dropped: int
    holes_skipped: int
    expired_streams: int


@attrs.define(eq=False)
class _Stream:
    last: int | None = None
    touched: float = 0.0
    awaiting_snapshot: bool = False
    # Reorder window only: (seq, arrival order, event) heap and arrival deadlines.
    held: list[tuple[int, int, Event]] = attrs.field(factory=list)
    deadlines: deque[tuple[float, int]] = attrs.field(factory=deque)


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class Orderer:
    """Releases each stream's events in order; see the module docstring for the rules.

    Args:
        recycler: takes back the events ordering drops.
        on_gap: told when a contiguous stream breaks, so its source can resync.
        window: events a stream may hold while waiting for a hole to fill.
        max_lateness: seconds an event may wait for a hole to fill.
        idle_ttl: seconds without events after which a stream's state is forgotten.
    """

    recycler: Recycler
    on_gap: GapReport
    window: int = attrs.field(kw_only=True)
    max_lateness: float = attrs.field(kw_only=True)
    idle_ttl: float = attrs.field(kw_only=True)

    _streams: dict[StreamKey, _Stream] = attrs.field(init=False, factory=dict)
    _holding: set[StreamKey] = attrs.field(init=False, factory=set)
    _arrivals: int = attrs.field(init=False, default=0)
    _next_sweep: float = attrs.field(init=False, default=0.0)
    _released: int = attrs.field(init=False, default=0)
    _stale: int = attrs.field(init=False, default=0)
    _gaps: int = attrs.field(init=False, default=0)
    _gap_dropped: int = attrs.field(init=False, default=0)
    _holes: int = attrs.field(init=False, default=0)
    _expired: int = attrs.field(init=False, default=0)

    def admit(self, event: Event, now: float, release: Release) -> None:
        """Take ``event`` in; call ``release`` for each event now due, in order."""
        kind = event.kind
        if kind in CRITICAL_KINDS:
            if kind is _BOOK_STATUS:
                self._forget_book(event.provider, event.instrument)
            self._released += 1
            release(event)
            return
        key = (event.provider, event.instrument, kind)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream()
        stream.touched = now
        seq = event.seq
        if kind is _BOOK_DELTA and type(event.payload) is BookDelta:
            prev = event.payload.prev_seq
            if prev is not None and seq is not None:
                self._admit_contiguous(stream, event, seq, prev, release)
                return
        if seq is None:
            self._admit_newest(stream, event, event.ingest_ts, release, strict=False)
        elif kind in LATEST_KINDS or self.window == 0:
            if self._admit_newest(stream, event, seq, release, strict=True) and (
                kind is _BOOK_SNAPSHOT
            ):
                # Only a snapshot that passed anchors its book. The event is no longer
                # ours (released, or recycled in debug mode): read the key, not it.
                self._anchor_book(key[0], key[1], seq, now)
        else:
            self._admit_window(key, stream, event, seq, now, release)

    # -- the three rules --------------------------------------------------------

    def _admit_contiguous(
        self, stream: _Stream, event: Event, seq: int, prev: int, release: Release
    ) -> None:
        last = stream.last
        if last is not None and seq <= last:
            self._drop_stale(event)
        elif stream.awaiting_snapshot:
            self._gap_dropped += 1
            self.recycler.recycle(event)
        elif last is None or prev == last:
            stream.last = seq
            self._released += 1
            release(event)
        else:
            self._gaps += 1
            self._gap_dropped += 1
            stream.awaiting_snapshot = True
            self.on_gap(event.provider, event.instrument, f"expected prev_seq {last}, got {prev}")
            self.recycler.recycle(event)

    def _forget_book(self, provider: str, instrument: str) -> None:
        """A book changed state (a resync, a reconnect): its sequence starts afresh.

        After a venue's sequence reset or a reconnect, the next snapshot may carry a
        lower ``seq`` than the last one released; without this, it and every delta
        after it would be dropped as stale until the idle TTL. The book's deltas wait
        for that snapshot, as after a gap.
        """
        snapshots = self._streams.get((provider, instrument, _BOOK_SNAPSHOT))
        if snapshots is not None and not snapshots.held:
            snapshots.last = None
        deltas = self._streams.get((provider, instrument, _BOOK_DELTA))
        if deltas is not None and not deltas.held:
            deltas.last = None
            deltas.awaiting_snapshot = True

    def _anchor_book(self, provider: str, instrument: str, seq: int, now: float) -> None:
        """A snapshot passed: the book's deltas continue from its sequence."""
        key = (provider, instrument, _BOOK_DELTA)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(touched=now)
        if stream.last is None or stream.awaiting_snapshot or seq > stream.last:
            stream.last = seq
            stream.awaiting_snapshot = False

    def _admit_newest(
        self, stream: _Stream, event: Event, key: int, release: Release, *, strict: bool
    ) -> bool:
        """Release ``event`` if newer than the last released; whether it was."""
        last = stream.last
        # Sequences are unique (equal is a duplicate); timestamps may tie.
        if last is not None and (key <= last if strict else key < last):
            self._drop_stale(event)
            return False
        stream.last = key
        self._released += 1
        release(event)
        return True

    def _admit_window(
        self,
        key: StreamKey,
        stream: _Stream,
        event: Event,
        seq: int,
        now: float,
        release: Release,
    ) -> None:
        last = stream.last
        if last is not None and seq <= last:
            self._drop_stale(event)
            return
        if last is not None and seq == last + 1 and not stream.held:
            stream.last = seq
            self._released += 1
            release(event)
            return
        if any(held_seq == seq for held_seq, _, _ in stream.held):
            self._drop_stale(event)
            return
        self._arrivals += 1
        heapq.heappush(stream.held, (seq, self._arrivals, event))
        stream.deadlines.append((now + self.max_lateness, seq))
        self._holding.add(key)
        self._release_run(stream, release)
        while len(stream.held) > self.window:
            self._give_up_hole(stream, release)
        self._settle(key, stream)

    # -- reorder window helpers -------------------------------------------------

    def _release_run(self, stream: _Stream, release: Release) -> None:
        """Release held events that continue the sequence without a hole."""
        held = stream.held
        while held and stream.last is not None and held[0][0] <= stream.last + 1:
            seq, _, event = heapq.heappop(held)
            if seq <= stream.last:
                # A contiguous delta or a snapshot of this stream moved ``last`` past it.
                self._drop_stale(event)
                continue
            stream.last = seq
            self._released += 1
            release(event)

    def _give_up_hole(self, stream: _Stream, release: Release) -> None:
        """Release the lowest held event, declaring the hole before it lost."""
        seq, _, event = heapq.heappop(stream.held)
        if stream.last is not None:
            self._holes += 1
        stream.last = seq
        self._released += 1
        release(event)
        self._release_run(stream, release)

    def _settle(self, key: StreamKey, stream: _Stream) -> None:
        last = stream.last
        deadlines = stream.deadlines
        while deadlines and last is not None and deadlines[0][1] <= last:
            deadlines.popleft()
        if not stream.held:
            deadlines.clear()
            self._holding.discard(key)

    def next_deadline(self) -> float:
        """The earliest hold deadline, or ``math.inf`` when nothing is held.

        The idle sweep is not a deadline: it runs in :meth:`expire` once due, and a
        pipeline without traffic has nothing new to forget.
        """
        earliest = math.inf
        for key in self._holding:
            earliest = min(earliest, self._streams[key].deadlines[0][0])
        return earliest

    def expire(self, now: float, release: Release) -> None:
        """Give up holes whose wait is over, and forget idle streams."""
        for key in list(self._holding):
            stream = self._streams[key]
            self._release_run(stream, release)  # ``last`` may have moved since the hold
            while stream.deadlines and stream.deadlines[0][0] <= now:
                _, seq = stream.deadlines.popleft()
                while stream.held and stream.held[0][0] <= seq:
                    self._give_up_hole(stream, release)
            self._settle(key, stream)
        if now >= self._next_sweep:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        horizon = now - self.idle_ttl
        idle = [
            key
            for key, stream in self._streams.items()
            # A book waiting for a snapshot after a gap is not idle: forgetting it
            # would let the next delta through as a fresh start.
            if stream.touched <= horizon and not stream.held and not stream.awaiting_snapshot
        ]
        for key in idle:
            del self._streams[key]
        self._expired += len(idle)
        self._next_sweep = now + self.idle_ttl / 4

    def _drop_stale(self, event: Event) -> None:
        self._stale += 1
        self.recycler.recycle(event)

    def drain(self) -> list[Event]:
        """Remove and return every held event (shutdown: the caller recycles them)."""
        events = [event for s in self._streams.values() for _, _, event in s.held]
        for stream in self._streams.values():
            stream.held.clear()
            stream.deadlines.clear()
        self._holding.clear()
        return events

    def statistics(self) -> OrderingStatistics:
        """A snapshot of the ordering counters."""
        return OrderingStatistics(
            streams=len(self._streams),
            held=sum(len(s.held) for s in self._streams.values()),
            released=self._released,
            stale_dropped=self._stale,
            gaps=self._gaps,
            gap_dropped=self._gap_dropped,
            holes_skipped=self._holes,
            expired_streams=self._expired,
        )
