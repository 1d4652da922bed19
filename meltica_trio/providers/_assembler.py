"""The book assembler: snapshot plus diffs in, book events and requests out (sans-I/O).

One :class:`BookAssembler` keeps one (provider, instrument) book. The provider's I/O
loop feeds it what the parser returned and performs what it answers, so the whole
synchronisation procedure is plain, synchronous and testable without a network::

    loop                               assembler
    start()                       ->   Publish(BookStatus SYNCING), RequestSnapshot (Binance)
    on_diff(DepthDiff)            ->   [] while syncing; Publish(BookDelta) once LIVE
    on_snapshot(DepthSnapshot)    ->   Publish(BookStatus LIVE), Publish(BookSnapshot)
    check_stale(now)              ->   Publish(BookStatus STALE) after ``stale_after`` quiet
    on_stale(reason) / resync()   ->   the loop lost its connection / wants a fresh book

``RequestSnapshot`` means "fetch the REST depth snapshot" under Binance rules and
"resubscribe the books channel" under OKX rules. No book data is published before the
book is LIVE; whenever it goes LIVE it publishes the status, then a ``BookSnapshot`` of
the book at that moment, then a ``BookDelta`` per applied diff. A delta's ``prev_seq``
is the ``seq`` of the event before it (the snapshot's for the first), so consumers and
the dispatcher check continuity with one comparison.

Binance rules (spot "How to manage a local order book correctly"): diffs are
buffered until a snapshot; buffered diffs with ``u <= lastUpdateId`` are dropped; if
the oldest remaining one starts after ``lastUpdateId + 1`` the snapshot is too old and
another is requested; the first applied diff must satisfy
``U <= lastUpdateId + 1 <= u`` and each later one ``U == previous u + 1``. Anything
else is a gap: the book is discarded (RESYNCING), diffs are buffered again from the
offending one, and a snapshot is requested.

OKX rules (v5 "Order book channel"): a ``snapshot`` sets the book; each update must
have ``prevSeqId`` equal to the last ``seqId``. That rule also accepts the two
documented exceptions: a keep-alive with no levels and ``seqId == prevSeqId`` (counted
as a heartbeat, not applied), and a sequence reset after maintenance, where ``seqId``
drops below ``prevSeqId`` (counted, applied). After every message the CRC32 of the
top 25 levels is compared with ``checksum``; a mismatch resyncs the book. OKX
announced that from June 2026 ``checksum`` is always ``0``, so a zero (or absent)
checksum is counted as skipped rather than failed: a genuine CRC32 of zero has odds of
one in four billion, and the sequence check still guards continuity.

Updates and checksums of one instrument never touch another instrument's assembler,
so a resync is always of one book only.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable
from typing import Final, TypeAlias

import attrs

from meltica_trio.events import BookDelta, BookSnapshot, BookState, BookStatus, Kind

from ._book import CHECKSUM_DEPTH, OrderBook
from ._parsed import DepthDiff, DepthSnapshot

STALE_AFTER: Final = 90.0
"""Seconds without any book message before a LIVE book is marked STALE. OKX sends a
keep-alive after about 60 s without changes; 90 s tolerates that plus jitter."""

MAX_BUFFERED_DIFFS: Final = 2048
"""Diffs held per book while waiting for a snapshot (~200 s of ``depth@100ms``); beyond
it the oldest are dropped, and a snapshot older than what is left is refetched."""


class SyncRules(enum.StrEnum):
    """Which venue's synchronisation procedure a book follows."""

    BINANCE = "binance"
    """REST snapshot, ``U``/``u`` update ids, no checksum."""
    OKX = "okx"
    """Pushed snapshot, ``seqId``/``prevSeqId``, CRC32 checksum of the top 25 levels."""


# Enum member lookup costs ~100 ns on CPython 3.11; the per-diff path reads constants.
_LIVE: Final = BookState.LIVE
_BOOK_DELTA: Final = Kind.BOOK_DELTA


@attrs.frozen
class Publish:
    """Publish an event of this book: the loop wraps ``payload`` in an envelope.

    Attributes:
        kind: ``BOOK_STATUS``, ``BOOK_SNAPSHOT`` or ``BOOK_DELTA``.
        seq: the envelope's ``seq`` (the book's update id after it), or ``None``.
        payload: the immutable payload.
    """

    kind: Kind
    seq: int | None
    payload: BookStatus | BookSnapshot | BookDelta


@attrs.frozen
class RequestSnapshot:
    """Get a fresh snapshot: Binance REST depth snapshot, OKX resubscribe.

    Attributes:
        reason: why, for logs.
    """

    reason: str


BookAction: TypeAlias = Publish | RequestSnapshot
"""What the assembler asks its I/O loop to do."""


@attrs.frozen(kw_only=True)
class BookStatistics:
    """Counters of one book (see :meth:`BookAssembler.statistics`).

    Attributes:
        provider, instrument: the book.
        state: its published state.
        last_seq: the last update id applied, if any.
        bid_levels, ask_levels: levels in the book now.
        buffered: diffs waiting for a snapshot now.
        applied: diffs applied to the book (buffered ones included).
        dropped: diffs not applied: already in the snapshot, buffer overflow, or
            (OKX) arriving while there is no book.
        gaps: sequence breaks detected.
        resyncs: times the book was discarded for a fresh snapshot.
        snapshots: snapshots loaded.
        snapshot_requests: ``RequestSnapshot`` actions emitted.
        heartbeats: OKX keep-alives (no levels, ``seqId == prevSeqId``).
        seq_resets: OKX sequence resets (``seqId < prevSeqId``) applied.
        checksum_ok, checksum_failed: venue checksums that matched / did not.
        checksum_skipped: OKX messages without a checksum (absent or ``0``).
    """

    provider: str
    instrument: str
    state: BookState
    last_seq: int | None
    bid_levels: int
    ask_levels: int
    buffered: int
    applied: int
    dropped: int
    gaps: int
    resyncs: int
    snapshots: int
    snapshot_requests: int
    heartbeats: int
    seq_resets: int
    checksum_ok: int
    checksum_failed: int
    checksum_skipped: int


@attrs.define(eq=False)
class BookAssembler:
    """Keeps one (provider, instrument) book in sync; see the module docstring.

    Args:
        provider: the provider name events are published under.
        instrument: the canonical instrument.
        rules: the venue's synchronisation procedure.
        stale_after: seconds without book messages before LIVE becomes STALE.
        max_buffered: diffs held while waiting for a snapshot (Binance).
        snapshot_depth: levels per side in published ``BookSnapshot`` events
            (``None``: the whole book, so deltas applied to it stay exact).
        checksum_depth: levels per side in an OKX checksum.
    """

    provider: str
    instrument: str
    rules: SyncRules
    stale_after: float = attrs.field(default=STALE_AFTER, kw_only=True)
    max_buffered: int = attrs.field(default=MAX_BUFFERED_DIFFS, kw_only=True)
    snapshot_depth: int | None = attrs.field(default=None, kw_only=True)
    checksum_depth: int = attrs.field(default=CHECKSUM_DEPTH, kw_only=True)

    book: OrderBook = attrs.field(init=False, factory=OrderBook)
    _binance: bool = attrs.field(init=False)
    _state: BookState = attrs.field(init=False, default=BookState.SYNCING)
    _synced: bool = attrs.field(init=False, default=False)
    _bridging: bool = attrs.field(init=False, default=False)
    _last_seq: int | None = attrs.field(init=False, default=None)
    _venue_checksum: int | None = attrs.field(init=False, default=None)
    _last_input: float | None = attrs.field(init=False, default=None)
    _buffer: deque[DepthDiff] = attrs.field(init=False, factory=deque)
    _applied: int = attrs.field(init=False, default=0)
    _dropped: int = attrs.field(init=False, default=0)
    _gaps: int = attrs.field(init=False, default=0)
    _resyncs: int = attrs.field(init=False, default=0)
    _snapshots: int = attrs.field(init=False, default=0)
    _requests: int = attrs.field(init=False, default=0)
    _heartbeats: int = attrs.field(init=False, default=0)
    _seq_resets: int = attrs.field(init=False, default=0)
    _checksum_ok: int = attrs.field(init=False, default=0)
    _checksum_failed: int = attrs.field(init=False, default=0)
    _checksum_skipped: int = attrs.field(init=False, default=0)

    @_binance.default
    def _binance_default(self) -> bool:
        return self.rules is SyncRules.BINANCE

    @property
    def state(self) -> BookState:
        """The book's published state."""
        return self._state

    @property
    def last_seq(self) -> int | None:
        """The last update id applied, if any."""
        return self._last_seq

    # -- inputs -------------------------------------------------------------------

    def start(self, now: float | None = None) -> list[BookAction]:
        """Begin syncing: publish SYNCING and, under Binance rules, ask for a snapshot.

        Call it once the diff stream is subscribed, so that no diff after the
        snapshot can be missed.
        """
        self._last_input = now
        actions: list[BookAction] = [self._publish_status("subscribed")]
        if self.rules is SyncRules.BINANCE:
            actions.append(self._request("initial sync"))
        return actions

    def on_diff(self, diff: DepthDiff, now: float | None = None) -> list[BookAction]:
        """Take one depth update; ``now`` (any monotonic clock) feeds :meth:`check_stale`."""
        if now is not None:
            self._last_input = now
        if not self._synced:
            if self._binance:
                self._buffer_diff(diff)
            else:
                self._dropped += 1
            return []
        if self._binance:
            return self._binance_diff(diff)
        return self._okx_diff(diff)

    def on_snapshot(self, snapshot: DepthSnapshot, now: float | None = None) -> list[BookAction]:
        """Take a full book: the REST snapshot (Binance) or a pushed snapshot (OKX)."""
        if now is not None:
            self._last_input = now
        if self._binance:
            return self._binance_snapshot(snapshot)
        return self._okx_snapshot(snapshot)

    def on_stale(self, reason: str) -> list[BookAction]:
        """Mark the book STALE (e.g. the connection dropped); the book itself is kept.

        A later diff that continues the sequence (or an OKX keep-alive) makes it LIVE
        again; one that does not starts a resync, as always.
        """
        if self._state is BookState.STALE:
            return []
        return [self._transition(BookState.STALE, reason)]

    def check_stale(self, now: float) -> list[BookAction]:
        """Mark a LIVE book STALE when no book message came for ``stale_after`` seconds.

        Args:
            now: the same clock as the ``now`` given to the other inputs.
        """
        if self._last_input is None:
            self._last_input = now
            return []
        quiet = now - self._last_input
        if self._state is BookState.LIVE and quiet >= self.stale_after:
            return self.on_stale(f"no book updates for {quiet:.1f}s")
        return []

    def resync(self, reason: str) -> list[BookAction]:
        """Discard the book and ask for a fresh snapshot (e.g. after a reconnect)."""
        return self._resync(reason)

    # -- outputs ------------------------------------------------------------------

    def snapshot(self, depth: int | None = None) -> BookSnapshot | None:
        """The book now, best ``depth`` levels per side; ``None`` unless LIVE."""
        if self._state is not BookState.LIVE:
            return None
        bids, asks = self.book.top(depth)
        return BookSnapshot(bids=bids, asks=asks, checksum=self._venue_checksum)

    def statistics(self) -> BookStatistics:
        """The book's counters now."""
        return BookStatistics(
            provider=self.provider,
            instrument=self.instrument,
            state=self._state,
            last_seq=self._last_seq,
            bid_levels=self.book.bid_count,
            ask_levels=self.book.ask_count,
            buffered=len(self._buffer),
            applied=self._applied,
            dropped=self._dropped,
            gaps=self._gaps,
            resyncs=self._resyncs,
            snapshots=self._snapshots,
            snapshot_requests=self._requests,
            heartbeats=self._heartbeats,
            seq_resets=self._seq_resets,
            checksum_ok=self._checksum_ok,
            checksum_failed=self._checksum_failed,
            checksum_skipped=self._checksum_skipped,
        )

    # -- Binance ------------------------------------------------------------------

    def _buffer_diff(self, diff: DepthDiff) -> None:
        if len(self._buffer) >= self.max_buffered:
            self._buffer.popleft()
            self._dropped += 1
        self._buffer.append(diff)

    def _binance_snapshot(self, snapshot: DepthSnapshot) -> list[BookAction]:
        seq = snapshot.seq
        if seq is None:
            return self._resync("snapshot without an update id")
        if self._synced and self._last_seq is not None and seq <= self._last_seq:
            return []  # the live book is already past this snapshot
        pending = [d for d in self._buffer if d.last_seq is None or d.last_seq > seq]
        self._dropped += len(self._buffer) - len(pending)
        self._buffer = deque(pending)
        if pending and (pending[0].first_seq or 0) > seq + 1:
            return [self._request(f"snapshot {seq} predates buffered diffs")]
        self._buffer.clear()
        self.book.load(snapshot.bids, snapshot.asks)
        self._snapshots += 1
        self._synced = self._bridging = True
        self._last_seq = seq
        for i, diff in enumerate(pending):
            gap = self._binance_apply(diff)
            if gap is not None:
                return self._resync(gap, keep=pending[i:])
        return self._go_live("snapshot applied")

    def _binance_diff(self, diff: DepthDiff) -> list[BookAction]:
        prev = self._last_seq
        gap = self._binance_apply(diff)
        if gap is not None:
            return self._resync(gap, keep=(diff,))
        if self._last_seq == prev:
            return []  # already in the book
        return self._applied_diff(diff, prev)

    def _binance_apply(self, diff: DepthDiff) -> str | None:
        """Apply ``diff`` if it continues the book; the gap's description if not."""
        first, last, prev = diff.first_seq, diff.last_seq, self._last_seq
        if first is None or last is None or prev is None:
            self._gaps += 1
            return "diff or book without update ids"
        if last <= prev:
            self._dropped += 1
            return None
        if first > prev + 1 or (first != prev + 1 and not self._bridging):
            self._gaps += 1
            return f"gap: expected update {prev + 1}, got {first}..{last}"
        self._bridging = False
        self.book.apply(diff.bids, diff.asks)
        self._applied += 1
        self._last_seq = last
        return None

    # -- OKX ----------------------------------------------------------------------

    def _okx_snapshot(self, snapshot: DepthSnapshot) -> list[BookAction]:
        self.book.load(snapshot.bids, snapshot.asks)
        self._snapshots += 1
        self._buffer.clear()
        mismatch = self._verify(snapshot.checksum)
        if mismatch is not None:
            return self._resync(mismatch)
        self._synced = True
        self._last_seq = snapshot.seq
        return self._go_live("snapshot received")

    def _okx_diff(self, diff: DepthDiff) -> list[BookAction]:
        seq, prev, last = diff.last_seq, diff.prev_seq, self._last_seq
        if prev is not None and last is not None and prev != last:
            self._gaps += 1
            return self._resync(f"gap: prevSeqId {prev} does not follow seqId {last}")
        heartbeat = seq is not None and seq == prev and not diff.bids and not diff.asks
        if heartbeat:
            self._heartbeats += 1
        else:
            if seq is not None and prev is not None and seq < prev:
                self._seq_resets += 1
            self.book.apply(diff.bids, diff.asks)
        mismatch = self._verify(diff.checksum)
        if mismatch is not None:
            return self._resync(mismatch)
        if seq is not None:
            self._last_seq = seq
        if not heartbeat:
            self._applied += 1
            return self._applied_diff(diff, prev)
        return self._go_live("keep-alive received") if self._state is not _LIVE else []

    def _verify(self, checksum: int | None) -> str | None:
        """Check the venue's checksum against the book; the mismatch if any."""
        if not checksum:
            self._checksum_skipped += 1
            return None
        actual = self.book.checksum(self.checksum_depth)
        if actual == checksum:
            self._checksum_ok += 1
            self._venue_checksum = checksum
            return None
        self._checksum_failed += 1
        return f"checksum mismatch: venue {checksum}, book {actual}"

    # -- shared -------------------------------------------------------------------

    def _applied_diff(self, diff: DepthDiff, prev: int | None) -> list[BookAction]:
        if self._state is not _LIVE:
            return self._go_live("updates resumed")
        delta = BookDelta(bids=diff.bids, asks=diff.asks, prev_seq=prev, checksum=diff.checksum)
        return [Publish(_BOOK_DELTA, self._last_seq, delta)]

    def _go_live(self, reason: str) -> list[BookAction]:
        actions: list[BookAction] = []
        if self._state is not BookState.LIVE:
            actions.append(self._transition(BookState.LIVE, reason))
        bids, asks = self.book.top(self.snapshot_depth)
        snapshot = BookSnapshot(bids=bids, asks=asks, checksum=self._venue_checksum)
        actions.append(Publish(Kind.BOOK_SNAPSHOT, self._last_seq, snapshot))
        return actions

    def _resync(self, reason: str, keep: Iterable[DepthDiff] = ()) -> list[BookAction]:
        self._resyncs += 1
        self._synced = self._bridging = False
        self._venue_checksum = None
        self.book.clear()
        self._buffer.clear()
        if self.rules is SyncRules.BINANCE:
            for diff in keep:
                self._buffer_diff(diff)
        actions: list[BookAction] = []
        if self._state is not BookState.RESYNCING:
            actions.append(self._transition(BookState.RESYNCING, reason))
        actions.append(self._request(reason))
        return actions

    def _request(self, reason: str) -> RequestSnapshot:
        self._requests += 1
        return RequestSnapshot(reason)

    def _transition(self, state: BookState, reason: str) -> Publish:
        self._state = state
        return self._publish_status(reason)

    def _publish_status(self, reason: str) -> Publish:
        status = BookStatus(state=self._state, reason=reason, last_seq=self._last_seq)
        return Publish(Kind.BOOK_STATUS, None, status)
