"""A worker's critical stream: read by group, applied once, acknowledged after the function.

Three tasks share one :class:`CriticalIntake`:

- the reader takes entries (:class:`~._group.GroupReader`: its own pending, claimed
  ones, new ones) while fewer than ``in_flight`` are unacknowledged; decodes them
  (a malformed entry goes to the group's dead-letter stream and is acknowledged);
  begins their apply ids (:class:`~._gate.ApplyGate`); and puts each entry to apply
  in the consumer's lane as a pooled envelope. Entries applied before, or copies of
  one being applied, are acknowledged without reaching the function.
- the acker waits for the function to return (or raise: the runtime has put the
  failure in the DLQ) on each entry, then marks it applied and XACKs it in one
  script, in a MULTI with the dead letters of any failures.
- the heartbeat keeps entries held by this worker from looking idle, so that only
  a dead (or cut-off) worker's entries are claimed by the others.
"""

from __future__ import annotations

import functools
import logging

import attrs
import trio
from coredis.response.types import StreamEntry

from meltica_trio._errors import DecodeError
from meltica_trio.bus import Lane
from meltica_trio.events import Event
from meltica_trio.lifecycle import EventPool
from meltica_trio.telemetry import DeadLetterQueue

from ._dead import add_dead_letter, failed_entry, malformed_entry
from ._gate import ApplyGate, Verdict
from ._group import GroupReader
from ._link import Link
from ._streams import StreamNames
from ._wire import decode_entry, fields_of, id_of

log = logging.getLogger(__name__)

_Held = tuple[bytes, str]
"""(entry id, apply id) of an entry this worker holds."""


@attrs.frozen(kw_only=True)
class CriticalStatistics:
    """Counters of a worker's critical stream.

    Attributes:
        applied: entries handed to the consumer's lane to apply.
        acknowledged: entries acknowledged (applied, duplicate or malformed).
        duplicates: entries applied before, or copies of one being applied.
        malformed: entries that did not decode (in the dead-letter stream).
        failed: function failures sent to the dead-letter stream.
        in_flight: entries held now, unacknowledged.
        awaiting_ack: entries whose function returned, not yet acknowledged.
    """

    applied: int
    acknowledged: int
    duplicates: int
    malformed: int
    failed: int
    in_flight: int
    awaiting_ack: int


@attrs.define(eq=False)
class CriticalIntake:
    """The critical stream of one worker (see the module docstring).

    Args:
        link: the Redis link.
        names: the key names.
        reader: this worker's reader of the group's critical stream.
        gate: the group's apply marks.
        pool: lends the envelopes put in the lane.
        lane: the consumer's lane.
        dlq: the consumer runtime's DLQ (its new entries are shipped to Redis).
        in_flight: entries held unacknowledged at most.
        heartbeat: seconds between refreshes of held entries.
    """

    link: Link
    names: StreamNames
    reader: GroupReader
    gate: ApplyGate
    pool: EventPool[Event]
    lane: Lane
    dlq: DeadLetterQueue
    in_flight: int = attrs.field(kw_only=True)
    heartbeat: float = attrs.field(kw_only=True)
    _pending: dict[Event, _Held] = attrs.field(init=False, factory=dict)
    _held: set[bytes] = attrs.field(init=False, factory=set)
    _done: list[_Held] = attrs.field(init=False, factory=list)
    _acks: list[bytes] = attrs.field(init=False, factory=list)
    _letters: list[dict[bytes, bytes]] = attrs.field(init=False, factory=list)
    _work: trio.Event = attrs.field(init=False, factory=trio.Event)
    _room: trio.lowlevel.ParkingLot = attrs.field(init=False, factory=trio.lowlevel.ParkingLot)
    _shipped: int = attrs.field(init=False, default=0)
    _counts: dict[str, int] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        names = ("applied", "acknowledged", "duplicates", "malformed", "failed")
        self._counts = dict.fromkeys(names, 0)

    @property
    def dead_letters(self) -> str:
        """The group's dead-letter stream."""
        return self.names.dlq(self.reader.group)

    # -- reading ----------------------------------------------------------------------

    async def serve_reader(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Read and dispatch entries until cancelled."""
        task_status.started()
        refill = max(self.in_flight // 2, 1)
        while True:
            # Read again once half the window is free: batches stay large, and the
            # function always has the other half to work on meanwhile.
            while self.in_flight - len(self._held) < refill:
                await self._room.park()
            entries = await self.reader.read(self.in_flight - len(self._held))
            await self._dispatch(entries)

    async def _dispatch(self, entries: tuple[StreamEntry, ...]) -> None:
        decoded: list[tuple[bytes, Event, str]] = []
        for entry in entries:
            identifier = id_of(entry)
            if identifier in self._held:
                continue  # claimed back while still ours (a slow heartbeat): already here
            try:
                event, apply = decode_entry(fields_of(entry))
                if apply is None:
                    raise DecodeError("a critical entry needs an apply id ('id')")
            except DecodeError as exc:
                self._malformed(entry, exc)
                continue
            decoded.append((identifier, event, apply))
            self._held.add(identifier)
        if not decoded:
            self._wake()
            return
        pairs = [(identifier, apply) for identifier, _, apply in decoded]
        verdicts = await self.link.run(functools.partial(self.gate.begin, pairs), "begin apply")
        for (identifier, event, apply), verdict in zip(decoded, verdicts, strict=True):
            if verdict is not Verdict.APPLY:
                self._counts["duplicates"] += 1
                self._acks.append(identifier)
                continue
            try:
                # Without a checkpoint per entry, the whole read reaches the function
                # as one batch (and is acknowledged as one).
                envelope = self.pool.duplicate_nowait(event)
            except trio.WouldBlock:
                envelope = await self.pool.duplicate(event)
            self._pending[envelope] = (identifier, apply)
            self._counts["applied"] += 1
            self.lane.put(envelope)
        self._wake()

    def _malformed(self, entry: StreamEntry, exc: DecodeError) -> None:
        self._counts["malformed"] += 1
        identifier = id_of(entry)
        log.warning("critical entry %r is malformed: %s", identifier, exc)
        self._letters.append(
            malformed_entry(
                self.reader.stream, identifier, fields_of(entry), str(exc), self.reader.consumer
            )
        )
        self._held.add(identifier)
        self._acks.append(identifier)

    # -- completing -------------------------------------------------------------------

    def completed(self, event: Event) -> None:
        """The function returned or raised on ``event``: acknowledge its entry.

        Events that did not come from the stream (local answers) are ignored.
        """
        held = self._pending.pop(event, None)
        if held is not None:
            self._done.append(held)
            self._wake()

    def _wake(self) -> None:
        if not self._work.is_set():
            self._work.set()

    async def serve_acker(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Mark applied and acknowledge finished entries until cancelled."""
        task_status.started()
        while True:
            if not (self._done or self._acks or self._letters or self._new_failures()):
                await self._work.wait()
            self._work = trio.Event()
            done, acks, letters = self._done, self._acks, self._letters
            self._done, self._acks, self._letters = [], [], []
            letters.extend(self._failures())
            await self.link.run(functools.partial(self._commit, done, acks, letters), "xack")
            self._held.difference_update(acks)
            self._held.difference_update(identifier for identifier, _ in done)
            self._counts["acknowledged"] += len(acks) + len(done)
            self._room.unpark_all()

    async def _commit(
        self, done: list[_Held], acks: list[bytes], letters: list[dict[bytes, bytes]]
    ) -> None:
        async with self.link.client.pipeline(transaction=True) as multi:
            for letter in letters:
                add_dead_letter(multi, self.dead_letters, letter)
            if done or acks:
                self.gate.finish(multi, self.reader.stream, done, acks)

    def _new_failures(self) -> int:
        return self.dlq.statistics().recorded - self._shipped

    def _failures(self) -> list[dict[bytes, bytes]]:
        """Dead-letter entries for the runtime's DLQ entries not shipped yet."""
        new = self._new_failures()
        if not new:
            return []
        self._shipped += new
        self._counts["failed"] += new
        held = self.dlq.entries()
        return [failed_entry(letter, self.reader.consumer) for letter in held[-new:]]

    # -- staying alive ----------------------------------------------------------------

    async def serve_heartbeat(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Refresh held entries every ``heartbeat`` seconds until cancelled."""
        task_status.started()
        while True:
            await trio.sleep(self.heartbeat)
            if self._held:  # (an empty touch would say nothing about the link)
                touch = functools.partial(self.reader.touch, list(self._held))
                await self.link.run(touch, "heartbeat")

    async def wait_drained(self) -> None:
        """Wait until every entry read so far has been acknowledged."""
        while self._held:
            await self._room.park()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> CriticalStatistics:
        """A snapshot of the counters."""
        return CriticalStatistics(
            in_flight=len(self._held),
            awaiting_ack=len(self._done),
            **self._counts,
        )
