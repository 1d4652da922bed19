"""One subscriber's lane on the Data Bus, enforcing the delivery class of every kind.

A lane is written by the dispatcher (``put``, which never blocks) and read by the
subscriber's consumer task (``take_batch``, which hands over everything queued in
one wake-up). Arrival order is kept across kinds. When the subscriber lags:

- CRITICAL events are always queued, never dropped or merged; their backlog is
  visible in :class:`LaneStatistics` instead of blocking the dispatcher.
- SEQUENCED events: once ``capacity`` non-critical events are queued, the oldest
  non-critical one is dropped; the next delivered event of its stream carries the
  count in ``Event.skipped``. A lane that lost a book delta purges that book's other
  queued deltas, drops further ones until a fresh ``BOOK_SNAPSHOT`` of that book
  arrives, and asks the source for one through ``on_book_lost``.
- LATEST events replace a queued event of the same (kind, provider, instrument) in
  place, keeping its position in the queue.

Why a deque and a parking lot rather than a trio memory channel: a channel can
neither replace a queued item nor drop its oldest, and it costs about three times as
much per item; see ``docs/explanation/lanes.md``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

import attrs
import trio

from meltica_trio.events import CRITICAL_KINDS, LATEST_KINDS, Event, Kind
from meltica_trio.lifecycle import Recycler

_BOOK_DELTA: Final = Kind.BOOK_DELTA
_BOOK_SNAPSHOT: Final = Kind.BOOK_SNAPSHOT

StreamKey = tuple[Kind, str, str]
"""(kind, provider, instrument)."""
BookKey = tuple[str, str]
"""(provider, instrument)."""


@attrs.frozen(kw_only=True)
class LaneStatistics:
    """A snapshot of one lane.

    Attributes:
        consumer_id: the subscriber the lane feeds.
        capacity: non-critical events it holds before dropping the oldest.
        depth: events queued now.
        critical_backlog: critical events queued now (never dropped).
        delivered: events handed to the consumer.
        coalesced: LATEST events replaced in place by a newer one.
        skipped: SEQUENCED events dropped on overflow or while awaiting a snapshot.
        overflowed: LATEST events dropped on overflow (no newer one queued yet).
        high_water: the deepest the lane has been.
        oldest_age_ns: wall-clock age of the oldest queued event, 0 when empty.
        books_awaiting_snapshot: books whose deltas are held back until a snapshot.
    """

    consumer_id: str
    capacity: int
    depth: int
    critical_backlog: int
    delivered: int
    coalesced: int
    skipped: int
    overflowed: int
    high_water: int
    oldest_age_ns: int
    books_awaiting_snapshot: int


@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class Lane:
    """A bounded, delivery-class-aware queue from the dispatcher to one consumer.

    Args:
        consumer_id: the subscriber this lane feeds.
        capacity: non-critical events held before the oldest is dropped.
        recycler: takes back events the lane drops or replaces.
        on_book_lost: called with (provider, instrument) when the lane dropped a
            book delta and needs a fresh snapshot; must not block.
        wall_clock: ns since the epoch, for ages in statistics.
    """

    consumer_id: str
    capacity: int = attrs.field()
    recycler: Recycler = attrs.field()
    on_book_lost: Callable[[str, str], None] = attrs.field(kw_only=True)
    wall_clock: Callable[[], int] = attrs.field(kw_only=True)

    _queue: deque[Event] = attrs.field(init=False, factory=deque)
    _latest: dict[StreamKey, Event] = attrs.field(init=False, factory=dict)
    _noncritical: int = attrs.field(init=False, default=0)
    _skips: dict[StreamKey, int] = attrs.field(init=False, factory=dict)
    _awaiting_snapshot: set[BookKey] = attrs.field(init=False, factory=set)
    # Lost books whose fresh snapshot is queued but not yet delivered.
    _resyncing: set[BookKey] = attrs.field(init=False, factory=set)
    # The one consumer task waiting in take_batch, if any. A ParkingLot would do,
    # but costs a third of the CPU of a lightly loaded pipeline (see decisions.md).
    _waiter: trio.lowlevel.Task | None = attrs.field(init=False, default=None)
    # Or, for a lane drained by a shared runner: told once when the lane has work.
    _on_ready: Callable[[], None] | None = attrs.field(init=False, default=None)
    _signalled: bool = attrs.field(init=False, default=False)
    _closed: bool = attrs.field(init=False, default=False)
    _delivered: int = attrs.field(init=False, default=0)
    _coalesced: int = attrs.field(init=False, default=0)
    _skipped: int = attrs.field(init=False, default=0)
    _overflowed: int = attrs.field(init=False, default=0)
    _high_water: int = attrs.field(init=False, default=0)

    @capacity.validator
    def _check_capacity(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"lane capacity must be at least 1, got {value}")

    # -- the dispatcher's side --------------------------------------------------

    def put(self, event: Event) -> None:
        """Queue ``event`` under its delivery class; the lane now owns it. Never blocks."""
        if self._closed:
            self.recycler.recycle(event)
            return
        kind = event.kind
        if kind in CRITICAL_KINDS:
            self._queue.append(event)
        elif kind in LATEST_KINDS:
            if not self._put_latest(event, (kind, event.provider, event.instrument)):
                return
        elif self._noncritical < self.capacity and not self._awaiting_snapshot:
            # The common SEQUENCED case, inlined: room, and no book waiting for a snapshot.
            self._queue.append(event)
            self._noncritical += 1
        elif not self._put_sequenced(event, kind):
            return
        if self._waiter is not None:
            self._wake()
        elif self._on_ready is not None and not self._signalled:
            self._signalled = True
            self._on_ready()

    def _put_latest(self, event: Event, key: StreamKey) -> bool:
        queued = self._latest.get(key)
        if queued is not None:
            # Replace in place: the queued envelope is this lane's own, not yet delivered.
            queued._copy_from(event)
            self.recycler.recycle(event)
            self._coalesced += 1
            if self._awaiting_snapshot and key[0] is _BOOK_SNAPSHOT:
                self._resync(key[1], key[2])  # the queued snapshot is now the fresh one
            return False
        if self._noncritical >= self.capacity:
            self._drop_oldest()  # first: it may lose a delta of this snapshot's own book
        if self._awaiting_snapshot and key[0] is _BOOK_SNAPSHOT:
            self._resync(key[1], key[2])
        self._queue.append(event)
        self._latest[key] = event
        self._noncritical += 1
        return True

    def _put_sequenced(self, event: Event, kind: Kind) -> bool:
        if kind is _BOOK_DELTA and self._awaiting_snapshot and self._book_lost_for(event):
            self._skip(event)
            return False
        if self._noncritical >= self.capacity:
            self._drop_oldest()
            if kind is _BOOK_DELTA and self._book_lost_for(event):
                self._skip(event)  # the overflow just cost this very book a delta
                return False
        self._queue.append(event)
        self._noncritical += 1
        return True

    def _resync(self, provider: str, instrument: str) -> None:
        """A fresh snapshot of a lost book is queued: its deltas may follow it again."""
        book = (provider, instrument)
        if book in self._awaiting_snapshot:
            self._awaiting_snapshot.discard(book)
            self._resyncing.add(book)

    def _book_lost_for(self, event: Event) -> bool:
        return (event.provider, event.instrument) in self._awaiting_snapshot

    def _drop_oldest(self) -> None:
        """Drop the oldest non-critical event to make room for one more."""
        queue = self._queue
        index = 0
        for index, queued in enumerate(queue):  # noqa: B007 (index used after the loop)
            if queued.kind not in CRITICAL_KINDS:
                break
        victim = queue[index]
        del queue[index]
        self._noncritical -= 1
        if victim.kind in LATEST_KINDS:
            key = (victim.kind, victim.provider, victim.instrument)
            del self._latest[key]
            self._overflowed += 1
            self.recycler.recycle(victim)
            if self._resyncing and key[0] is _BOOK_SNAPSHOT:
                self._lose_resync_snapshot(key[1], key[2])
            return
        kind, provider, instrument = victim.kind, victim.provider, victim.instrument
        self._skip(victim)
        if kind is _BOOK_DELTA:
            self._lose_book(provider, instrument)

    def _lose_resync_snapshot(self, provider: str, instrument: str) -> None:
        """If this dropped snapshot was a lost book's fresh one, the book is lost again."""
        book = (provider, instrument)
        if book in self._resyncing:
            self._resyncing.discard(book)
            self._lose_book(provider, instrument)

    def _skip(self, event: Event) -> None:
        key = (event.kind, event.provider, event.instrument)
        self._skips[key] = self._skips.get(key, 0) + 1
        self._skipped += 1
        self.recycler.recycle(event)

    def _lose_book(self, provider: str, instrument: str) -> None:
        """A delta of this book is gone: its queued deltas are useless until a snapshot."""
        # The purge shrinks the queue between takes: note its depth before the overflow.
        self._high_water = max(self._high_water, len(self._queue) + 1)
        book = (provider, instrument)
        self._awaiting_snapshot.add(book)
        stale = [
            e
            for e in self._queue
            if e.kind is _BOOK_DELTA and e.provider == provider and e.instrument == instrument
        ]
        for event in stale:
            self._queue.remove(event)
            self._noncritical -= 1
            self._skip(event)
        self.on_book_lost(provider, instrument)

    def close(self) -> None:
        """No more puts; recycle what is queued. The consumer's next take ends."""
        self._closed = True
        queued, self._queue = self._queue, deque()
        self._high_water = max(self._high_water, len(queued))
        self._latest.clear()
        self._noncritical = 0
        self.recycler.recycle_all(queued)
        if self._waiter is not None:
            self._wake()

    def _wake(self) -> None:
        task, self._waiter = self._waiter, None
        assert task is not None
        trio.lowlevel.reschedule(task)

    # -- the consumer's side ----------------------------------------------------

    async def take_batch(self) -> deque[Event]:
        """Everything queued, in order, waiting until there is something.

        The caller owns the returned events and must recycle each one.

        Raises:
            trio.EndOfChannel: the lane was closed.

        Cancellation:
            Safe: a cancelled take has taken nothing.
        """
        if self._queue:
            await trio.lowlevel.checkpoint()
        while not self._queue:
            if self._closed:
                raise trio.EndOfChannel
            if self._waiter is not None or self._on_ready is not None:
                raise trio.BusyResourceError("another task is already taking from this lane")
            self._waiter = trio.lowlevel.current_task()

            def abort(_: object) -> trio.lowlevel.Abort:
                self._waiter = None
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
        return self.take_nowait()

    def notify_when_ready(self, callback: Callable[[], None]) -> None:
        """Have ``callback`` told, once per :meth:`take_nowait`, that the lane has work.

        For a runner that drains many lanes in one task instead of one task per
        lane; the callback must not block.
        """
        self._on_ready = callback
        if self._queue:
            self._signalled = True
            callback()

    def take_nowait(self) -> deque[Event]:
        """Everything queued now, in order (possibly nothing); never blocks.

        The caller owns the returned events and must recycle each one.
        """
        self._signalled = False
        batch, self._queue = self._queue, deque()
        # Between takes a queue only grows (overflow drops keep it level), so its
        # deepest point is now: high water is tracked here, not on every put.
        self._high_water = max(self._high_water, len(batch))
        self._latest.clear()
        if self._resyncing:
            self._resyncing.clear()  # their fresh snapshots are in this batch
        self._noncritical = 0
        self._delivered += len(batch)
        if self._skips:
            self._annotate_skips(batch)
        return batch

    def _annotate_skips(self, batch: deque[Event]) -> None:
        skips = self._skips
        for event in batch:
            count = skips.pop((event.kind, event.provider, event.instrument), 0)
            if count:
                event.skipped += count
                if not skips:
                    return

    def statistics(self) -> LaneStatistics:
        """A snapshot of this lane's depth and counters."""
        queue = self._queue
        critical = sum(1 for e in queue if e.kind in CRITICAL_KINDS)
        oldest = self.wall_clock() - queue[0].ingest_ts if queue else 0
        return LaneStatistics(
            consumer_id=self.consumer_id,
            capacity=self.capacity,
            depth=len(queue),
            critical_backlog=critical,
            delivered=self._delivered,
            coalesced=self._coalesced,
            skipped=self._skipped,
            overflowed=self._overflowed,
            high_water=max(self._high_water, len(queue)),
            oldest_age_ns=max(oldest, 0),
            books_awaiting_snapshot=len(self._awaiting_snapshot),
        )
