"""The DLQ file: every dead letter appended as one JSON line, with its whole event.

The in-memory DLQ dies with its pipeline; the file outlives it, so an operator can
list, show, export and replay entries from another process (``meltica-trio dlq``).
One line per entry, UTF-8, ``\\n``-terminated::

    {"dlq_version": 1, "letter_id": "3f9a0c1b2d4e", "wall_ns": 1700000000000000000,
     "consumer_id": "momentum", "trace_id": "t-1", "decision_id": null,
     "event_id": 17, "kind": "trade", "provider": "binance", "instrument": "BTC-USDT",
     "seq": 123, "error": "ValueError: bad price", "traceback": "Traceback ...",
     "event": {...the event as encode_event writes it...}, "event_error": null}

``event`` is the event exactly as :func:`~meltica_trio.encode_event` encodes it, so
:func:`~meltica_trio.decode_event` rebuilds it for a replay; when the event could
not be encoded (a payload of the wrong class, say) it is null and ``event_error``
says why. Appends only: nothing rewrites or deletes lines, so rotate the file with
the usual tools while no pipeline writes it.

Writing never blocks a consumer: :meth:`DeadLetterJournal.append` encodes the line
and queues it in a bounded channel; :meth:`DeadLetterJournal.serve`, a task in the
pipeline's nursery, writes queued lines in batches, unbuffered, from a worker
thread (``trio.to_thread``), so a line is in the file as soon as its batch is. A
full queue or a failed write loses the line from the file (it stays in memory)
and is counted in ``DeadLetterStatistics.journal_failed``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import orjson
import trio

from meltica_trio._errors import DecodeError
from meltica_trio.events import Event, encode_event
from meltica_trio.events._codec import decode_event_dict

if TYPE_CHECKING:
    from ._dlq import DeadLetter, DeadLetterQueue

log = logging.getLogger(__name__)

DLQ_FILE_VERSION: Final = 1
"""Version of the DLQ line format; bumped on any incompatible change."""

JOURNAL_CAPACITY: Final = 1024
"""Lines queued for the writer. A consumer failing on every event at 10k events/s
fills it in 0.1 s if the disk stalls; then lines are counted as lost, never waited on."""

FLUSH_TIMEOUT: Final = 2.0
"""Seconds the writer spends, at shutdown, writing what is still queued."""

_FIELDS: Final[dict[str, tuple[type, ...]]] = {
    "letter_id": (str,),
    "wall_ns": (int,),
    "consumer_id": (str,),
    "trace_id": (str, type(None)),
    "decision_id": (str, type(None)),
    "event_id": (int,),
    "kind": (str,),
    "provider": (str,),
    "instrument": (str,),
    "seq": (int, type(None)),
    "error": (str,),
    "traceback": (str,),
    "event": (dict, type(None)),
    "event_error": (str, type(None)),
}


def encode_dead_letter(letter: DeadLetter, event: Event) -> bytes:
    """The DLQ file line for ``letter`` failing on ``event`` (newline included)."""
    try:
        encoded: orjson.Fragment | None = orjson.Fragment(encode_event(event))
        event_error = None
    except (ValueError, TypeError) as exc:
        encoded, event_error = None, f"the event could not be encoded: {exc}"
    document = {
        "dlq_version": DLQ_FILE_VERSION,
        **{name: getattr(letter, name) for name in _FIELDS if name not in _NOT_ON_LETTER},
        "event": encoded,
        "event_error": event_error,
    }
    return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)


_NOT_ON_LETTER: Final = frozenset({"event", "event_error"})


@attrs.frozen(kw_only=True)
class DeadLetterRecord:
    """One line of a DLQ file, checked; see the module docstring for the fields.

    ``event_document`` is the encoded event (None when it could not be encoded);
    :meth:`event` decodes it.
    """

    letter_id: str
    wall_ns: int
    consumer_id: str
    trace_id: str | None
    decision_id: str | None
    event_id: int
    kind: str
    provider: str
    instrument: str
    seq: int | None
    error: str
    traceback: str
    event_document: dict[str, Any] | None
    event_error: str | None

    def event(self) -> Event:
        """A new (unpooled) copy of the event the consumer failed on.

        Raises:
            DecodeError: the entry holds no event, or one this build cannot read.
        """
        if self.event_document is None:
            raise DecodeError(self.event_error or "the entry holds no event")
        return decode_event_dict(self.event_document)

    def as_dict(self) -> dict[str, Any]:
        """The record as its file line has it (the export format)."""
        # In the file's key order, so an export of an untouched entry is the same bytes.
        fields = {
            name: self.event_document if name == "event" else getattr(self, name)
            for name in _FIELDS
        }
        return {"dlq_version": DLQ_FILE_VERSION, **fields}


def parse_dead_letter(line: str | bytes) -> DeadLetterRecord:
    """Check and parse one DLQ file line.

    Raises:
        DecodeError: not JSON, another ``dlq_version``, or a missing or mistyped field.
    """
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"malformed JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise DecodeError("a DLQ entry is a JSON object")
    version = document.get("dlq_version")
    if version != DLQ_FILE_VERSION:
        raise DecodeError(
            f"dlq_version {version!r} is not supported (this build reads {DLQ_FILE_VERSION})",
            "dlq_version",
        )
    for name, types in _FIELDS.items():
        if name not in document:
            raise DecodeError("missing field", name)
        # bool is an int to Python; true is no event id.
        value = document[name]
        if not isinstance(value, types) or isinstance(value, bool):
            raise DecodeError(f"unexpected {type(value).__name__}", name)
    fields = {name: document[name] for name in _FIELDS if name != "event"}
    return DeadLetterRecord(event_document=document["event"], **fields)


@attrs.frozen
class DeadLetterFile:
    """A DLQ file as read: its entries in file order, and the lines that did not parse.

    Attributes:
        records: every entry that parsed, oldest first.
        problems: ``(line number, reason)`` for each line that did not.
    """

    records: tuple[DeadLetterRecord, ...]
    problems: tuple[tuple[int, str], ...]

    def find(self, letter_id: str) -> DeadLetterRecord:
        """The entry whose id is ``letter_id`` or starts with it (a unique prefix).

        Raises:
            KeyError: no entry, or more than one, matches.
        """
        exact = [r for r in self.records if r.letter_id == letter_id]
        matches = exact or [r for r in self.records if r.letter_id.startswith(letter_id)]
        if len(matches) == 1:
            return matches[0]
        if not matches or not letter_id:
            raise KeyError(f"no DLQ entry {letter_id!r}")
        raise KeyError(f"{len(matches)} DLQ entries start with {letter_id!r}; give more digits")


def read_dead_letters(path: str | Path) -> DeadLetterFile:
    """Read a DLQ file (a blocking read: for tools and the CLI, not for trio tasks).

    Blank lines are skipped; a line that does not parse is reported in
    ``problems`` rather than hiding the entries after it.

    Raises:
        OSError: the file cannot be read.
    """
    records: list[DeadLetterRecord] = []
    problems: list[tuple[int, str]] = []
    with open(path, "rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                records.append(parse_dead_letter(line))
            except DecodeError as exc:
                problems.append((number, str(exc)))
    return DeadLetterFile(tuple(records), tuple(problems))


@attrs.define(eq=False)
class DeadLetterJournal:
    """Appends dead letters to a DLQ file from a task of its own; see the module docstring.

    Attributes:
        path: the file (created if missing, appended to if not).
        capacity: lines queued for the writer at most.
        written: entries written to the file.
        failed: entries lost to the file (full queue, failed write, or closed).
    """

    path: Path = attrs.field(converter=Path)
    capacity: int = JOURNAL_CAPACITY
    written: int = attrs.field(init=False, default=0)
    failed: int = attrs.field(init=False, default=0)
    _send: trio.MemorySendChannel[bytes] = attrs.field(init=False)
    _receive: trio.MemoryReceiveChannel[bytes] = attrs.field(init=False)
    _batch: list[bytes] = attrs.field(init=False, factory=list)

    def __attrs_post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"journal capacity must be at least 1, got {self.capacity}")
        self._send, self._receive = trio.open_memory_channel[bytes](self.capacity)

    def append(self, letter: DeadLetter, event: Event) -> None:
        """Queue ``letter``'s line for the writer; never blocks (a full queue loses it)."""
        try:
            self._send.send_nowait(encode_dead_letter(letter, event))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            self.failed += 1

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Write queued lines until cancelled; then write what is left, time-bounded.

        Raises:
            OSError: the file cannot be opened (before ``started``): a pipeline
                configured with a DLQ file it cannot write does not start.

        Cancellation:
            The normal way to stop. Lines still queued are written within
            ``FLUSH_TIMEOUT`` (shielded); appends from then on count as failed.
        """
        # A plain file driven through worker threads (what trio.open_file does), so
        # that no write or flush ever blocks the trio thread.
        file = await trio.to_thread.run_sync(_open_append, self.path)
        try:
            task_status.started()
            while True:
                self._batch.append(await self._receive.receive())
                self._batch.extend(self._queued())
                await self._write(file)
        finally:
            # A batch cancelled before its write began is still in self._batch.
            self._send.close()
            self._batch.extend(self._queued())
            with trio.move_on_after(FLUSH_TIMEOUT, shield=True):
                await self._write(file)
            self.failed += len(self._batch)
            self._receive.close()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_close, file)

    def _queued(self) -> Iterator[bytes]:
        while True:
            try:
                yield self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return

    async def _write(self, file: io.FileIO) -> None:
        """Write the batch; it is cleared once written, or lost to an OSError.

        Cancellation:
            Before the write starts, the batch stays for the shutdown flush; once the
            worker thread runs, trio waits for it, so a batch is never written twice.
        """
        count = len(self._batch)
        if not count:
            return
        try:
            await trio.to_thread.run_sync(_append, file, b"".join(self._batch))
        except OSError as exc:
            self.failed += count
            log.error("DLQ file %s: %d entries not written: %s", self.path, count, exc)
        else:
            self.written += count
        self._batch.clear()


def _open_append(path: Path) -> io.FileIO:
    # Unbuffered: a line is in the file once written, and a failed write leaves
    # nothing behind in a buffer to be written twice, or to fail again at close.
    return io.FileIO(path, "ab")  # closed by the journal's task


def _append(file: io.FileIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[file.write(view) or 0 :]


def _close(file: io.FileIO) -> None:
    try:
        file.close()
    except OSError as exc:  # pragma: no cover (unbuffered: nothing left to flush)
        log.error("DLQ file %s: close failed: %s", file.name, exc)


async def serve_dead_letter_file(
    dlq: DeadLetterQueue,
    path: str | Path,
    *,
    capacity: int = JOURNAL_CAPACITY,
    task_status: trio.TaskStatus[DeadLetterJournal] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Append every entry ``dlq`` records to the file at ``path`` until cancelled.

    Started with the journal once the file is open. A pipeline runs this itself
    when ``PipelineConfig.dlq_path`` is set.

    Raises:
        OSError: the file cannot be opened (the task never starts).
    """
    journal = DeadLetterJournal(path, capacity)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.serve)
        dlq.write_to(journal)
        task_status.started(journal)
