"""Capture files: venue traffic recorded one JSON object per line (sync file I/O).

The format is the one of ``shared/fixtures/README.md``, so a capture of a real venue,
of the simulated venue, or the shared fixtures all replay the same way::

    {"t": 1633998512.06, "kind": "ws", "url": "wss://...", "data": {...}}

``t`` is the receive time in seconds since the epoch; ``kind`` is ``ws_open`` (a
WebSocket connected), ``ws_send`` (a frame sent), ``ws`` (a frame received) or
``rest`` (a REST response body); ``url`` is the WebSocket URL or the REST URL with its
query string; ``data`` is the decoded JSON body (``null`` for ``ws_open``).

Both reader and writer block on the file: a trio task runs them in a worker thread
(``trio.to_thread.run_sync``), or hands records to one that does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

import attrs
import orjson

from meltica_trio._errors import DecodeError


class CaptureKind(enum.StrEnum):
    """What a capture record holds."""

    WS_OPEN = "ws_open"
    """A WebSocket connected to ``url``; ``data`` is ``None``."""
    WS_SEND = "ws_send"
    """A frame sent on the WebSocket at ``url``."""
    WS = "ws"
    """A frame received on the WebSocket at ``url``."""
    REST = "rest"
    """The body of a REST response to ``url`` (with its query string)."""


_KINDS: Final = {k.value: k for k in CaptureKind}


@attrs.frozen
class CaptureRecord:
    """One line of a capture.

    Attributes:
        t: receive time, seconds since the epoch.
        kind: what the record holds.
        url: the WebSocket URL, or the REST URL with its query string.
        data: the decoded JSON body (``None`` for ``ws_open``).
    """

    t: float
    kind: CaptureKind
    url: str
    data: object

    def to_json(self) -> bytes:
        """The record as one line of JSON, newline included."""
        doc = {"t": self.t, "kind": self.kind.value, "url": self.url, "data": self.data}
        return orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)

    @classmethod
    def from_json(cls, line: bytes | str, where: str = "") -> CaptureRecord:
        """Parse one line of a capture.

        Raises:
            DecodeError: not JSON, or not a capture record; ``err.path`` is ``where``.
        """
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"not JSON: {exc}", where) from exc
        if type(doc) is not dict:
            raise DecodeError("expected a JSON object", where)
        t, kind_text, url = doc.get("t"), doc.get("kind"), doc.get("url")
        kind = _KINDS.get(kind_text) if type(kind_text) is str else None
        if not isinstance(t, int | float) or isinstance(t, bool) or kind is None:
            raise DecodeError("expected 't' (a number) and 'kind' (a known kind)", where)
        if not isinstance(url, str):
            raise DecodeError("expected 'url' (a string)", where)
        if "data" not in doc:
            raise DecodeError("missing field 'data'", where)
        return cls(float(t), kind, url, doc["data"])


def read_capture(path: str | Path) -> Iterator[CaptureRecord]:
    """Yield the records of a capture file in order.

    A last line with no newline that does not parse is a write cut short (the
    recorder was stopped mid-line) and ends the capture quietly. Empty lines are
    skipped.

    Raises:
        DecodeError: a complete line is malformed; ``err.path`` is ``"<file>:<line>"``.
        OSError: the file cannot be read.
    """
    name = str(path)
    with open(path, "rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                yield CaptureRecord.from_json(line, f"{name}:{number}")
            except DecodeError:
                if line.endswith(b"\n"):
                    raise
                return


@attrs.define(eq=False)
class CaptureWriter:
    """Appends records to a capture file, one line each, flushed per record.

    Use as a context manager, or call :meth:`close`::

        with CaptureWriter(path) as capture:
            capture.write(CaptureRecord(t, CaptureKind.WS, url, frame))

    Args:
        path: the capture file; created if missing, appended to if not.
    """

    path: Path = attrs.field(converter=Path)
    _file: IO[bytes] | None = attrs.field(init=False, default=None)
    _written: int = attrs.field(init=False, default=0)

    @property
    def written(self) -> int:
        """Records written by this writer."""
        return self._written

    def write(self, record: CaptureRecord) -> None:
        """Append one record and flush it to the OS."""
        if self._file is None:
            self._file = open(self.path, "ab")  # noqa: SIM115 (closed by close())
        self._file.write(record.to_json())
        self._file.flush()
        self._written += 1

    def close(self) -> None:
        """Close the file; further writes reopen it in append mode."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
