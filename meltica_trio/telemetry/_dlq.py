"""The dead-letter queue: what consumers failed on, kept for operators."""

from __future__ import annotations

import traceback
from collections import deque
from typing import Final

import attrs

from meltica_trio.events import Event

DLQ_CAPACITY: Final = 10_000
"""Entries kept; older ones are dropped (and counted) so a failing consumer cannot eat memory."""


@attrs.frozen(kw_only=True)
class DeadLetter:
    """One consumer failure, with enough context to find and replay the event.

    The event itself is not kept (it went back to its pool); its coordinates and
    payload are, and payloads are immutable, so keeping one costs nothing extra.
    """

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
    """Entries held now, recorded in all, and dropped for room."""

    held: int
    recorded: int
    dropped: int


@attrs.define(eq=False)
class DeadLetterQueue:
    """A bounded in-memory DLQ; the oldest entries make room for new ones."""

    capacity: int = DLQ_CAPACITY
    _entries: deque[DeadLetter] = attrs.field(init=False)
    _recorded: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"DLQ capacity must be at least 1, got {self.capacity}")
        self._entries = deque(maxlen=self.capacity)

    def record(
        self, consumer_id: str, event: Event, exc: BaseException, wall_ns: int
    ) -> DeadLetter:
        """Add an entry for ``consumer_id`` failing on ``event`` with ``exc``."""
        letter = DeadLetter(
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
        return letter

    def entries(self) -> tuple[DeadLetter, ...]:
        """The entries held, oldest first."""
        return tuple(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def statistics(self) -> DeadLetterStatistics:
        """Counts of entries held, recorded and dropped."""
        held = len(self._entries)
        return DeadLetterStatistics(
            held=held, recorded=self._recorded, dropped=self._recorded - held
        )
