"""The dead-letter queue: what consumers failed on, kept for operators.

In memory it keeps the last ``capacity`` entries. Attached to a journal
(``PipelineConfig.dlq_path``, see :mod:`meltica_trio.telemetry._journal`) it also
appends every entry, with the whole event, to a JSONL file the CLI reads.
"""

from __future__ import annotations

import secrets
import traceback
from collections import deque
from typing import TYPE_CHECKING, Final

import attrs

from meltica_trio.events import Event

if TYPE_CHECKING:
    from ._journal import DeadLetterJournal

DLQ_CAPACITY: Final = 10_000
"""Entries kept; older ones are dropped (and counted) so a failing consumer cannot eat memory."""


@attrs.frozen(kw_only=True)
class DeadLetter:
    """One consumer failure, with enough context to find and replay the event.

    The event itself is not kept (it went back to its pool); its coordinates and
    payload are, and payloads are immutable, so keeping one costs nothing extra.
    ``letter_id`` (12 hex digits, random) names the entry in the DLQ file and the CLI.
    """

    letter_id: str
    consumer_id: str
    trace_id: str | None
    decision_id: str | None
    event_id: int
    kind: str
    provider: str
    instrument: str
    seq: int | None
    payload: object
    error: str
    traceback: str
    wall_ns: int


@attrs.frozen(kw_only=True)
class DeadLetterStatistics:
    """Entries held now, recorded in all, and dropped for room.

    Attributes:
        held: entries in memory now.
        recorded: entries recorded since the start.
        dropped: entries dropped from memory to make room (the oldest).
        journal_written: entries appended to the DLQ file (0 without one).
        journal_failed: entries the DLQ file lost: its queue was full, a write
            failed, or it had closed.
    """

    held: int
    recorded: int
    dropped: int
    journal_written: int = 0
    journal_failed: int = 0


@attrs.define(eq=False)
class DeadLetterQueue:
    """A bounded in-memory DLQ; the oldest entries make room for new ones."""

    capacity: int = DLQ_CAPACITY
    _entries: deque[DeadLetter] = attrs.field(init=False)
    _recorded: int = attrs.field(init=False, default=0)
    _journal: DeadLetterJournal | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"DLQ capacity must be at least 1, got {self.capacity}")
        self._entries = deque(maxlen=self.capacity)

    def record(
        self, consumer_id: str, event: Event, exc: BaseException, wall_ns: int
    ) -> DeadLetter:
        """Add an entry for ``consumer_id`` failing on ``event`` with ``exc``."""
        letter = DeadLetter(
            letter_id=secrets.token_hex(6),
            consumer_id=consumer_id,
            trace_id=event.trace_id,
            decision_id=event.decision_id,
            event_id=event.event_id,
            kind=event.kind.value,
            provider=event.provider,
            instrument=event.instrument,
            seq=event.seq,
            payload=event.payload,
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(exc)),
            wall_ns=wall_ns,
        )
        self._entries.append(letter)
        self._recorded += 1
        if self._journal is not None:
            self._journal.append(letter, event)
        return letter

    def write_to(self, journal: DeadLetterJournal) -> None:
        """Append every entry recorded from now on to ``journal`` (the DLQ file)."""
        self._journal = journal

    def entries(self) -> tuple[DeadLetter, ...]:
        """The entries held, oldest first."""
        return tuple(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def statistics(self) -> DeadLetterStatistics:
        """Counts of entries held, recorded and dropped."""
        held = len(self._entries)
        journal = self._journal
        return DeadLetterStatistics(
            held=held,
            recorded=self._recorded,
            dropped=self._recorded - held,
            journal_written=0 if journal is None else journal.written,
            journal_failed=0 if journal is None else journal.failed,
        )
