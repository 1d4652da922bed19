"""Dead-letter streams: entries that could not be applied, kept in Redis for operators.

One stream per owner (a remote consumer's group, or ``bridge`` for the control
stream), trimmed with ``MAXLEN ~``, so a malformed entry or a failing function on a
worker on another host is visible from anywhere::

    redis-cli XRANGE meltica:dlq:<group> - +
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from coredis.patterns.pipeline import Pipeline
from coredis.tokens import PureToken

from meltica_trio.telemetry import DeadLetter

from ._defaults import DLQ_MAXLEN

_TRACEBACK_LIMIT: Final = 4000
"""Characters of a traceback kept in a dead-letter entry (the tail: where it failed)."""


def _text(value: object) -> bytes:
    return b"" if value is None else str(value).encode()


def malformed_entry(
    stream: str, entry_id: bytes, fields: Mapping[bytes, bytes], error: str, reader: str
) -> dict[bytes, bytes]:
    """A dead-letter entry for a stream entry that did not decode."""
    document: dict[bytes, bytes] = {
        b"reason": b"malformed",
        b"stream": stream.encode(),
        b"entry": entry_id,
        b"error": error.encode(),
        b"reader": reader.encode(),
    }
    for name, value in fields.items():
        document[b"raw." + name] = value
    return document


def failed_entry(letter: DeadLetter, reader: str) -> dict[bytes, bytes]:
    """A dead-letter entry for a consumer function that raised (its in-memory DLQ entry)."""
    return {
        b"reason": b"failed",
        b"consumer": letter.consumer_id.encode(),
        b"kind": letter.kind.encode(),
        b"provider": letter.provider.encode(),
        b"instrument": letter.instrument.encode(),
        b"seq": _text(letter.seq),
        b"event_id": _text(letter.event_id),
        b"trace_id": _text(letter.trace_id),
        b"decision_id": _text(letter.decision_id),
        b"error": letter.error.encode(),
        b"traceback": letter.traceback[-_TRACEBACK_LIMIT:].encode(),
        b"reader": reader.encode(),
    }


def add_dead_letter(pipe: Pipeline[bytes], stream: str, fields: dict[bytes, bytes]) -> None:
    """Queue, in ``pipe``, the XADD of a dead-letter entry to ``stream``."""
    pipe.xadd(
        stream,
        fields,
        trim_strategy=PureToken.MAXLEN,
        threshold=DLQ_MAXLEN,
        trim_operator=PureToken.APPROXIMATELY,
    )
