"""Structured logs: one JSON object per line, carrying the ids an operator searches by.

Log calls that know an event's or an order's coordinates pass them as ``extra=``
(build the mapping with :func:`log_fields`)::

    log.error("consumer %s failed", cid, extra=log_fields(consumer=cid, trace_id=tid))

With :class:`JsonFormatter` installed, each record becomes one line::

    {"ts": "2024-05-01T12:00:00.123456Z", "level": "ERROR",
     "logger": "meltica_trio.consumers._runtime", "message": "consumer c1 failed",
     "consumer": "c1", "trace_id": "7f3a..."}

Every ``extra=`` key appears at the top level; keys that are None are left out;
``exc`` holds the formatted traceback when the record has one. The plain text
format is unchanged, so the ids cost nothing to a user who never switches.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, TextIO

import orjson

_RESERVED: Final = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
"""Attributes every LogRecord has; anything else on a record came from ``extra=``."""

_FIRST: Final = ("ts", "level", "logger", "message")
"""Keys a JSON line always starts with, in this order; ``extra=`` cannot replace them."""

TEXT_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"
"""The plain format of the command line (and of :func:`configure_logging` without JSON)."""


def log_fields(
    *,
    trace_id: str | None = None,
    decision_id: str | None = None,
    consumer: str | None = None,
    provider: str | None = None,
    instrument: str | None = None,
    **more: object,
) -> dict[str, object]:
    """The ``extra=`` mapping of a log call: the known ids, None values left out.

    The names are the keys of a JSON log line (``consumer`` is a consumer id).
    """
    fields: dict[str, object] = {
        "trace_id": trace_id,
        "decision_id": decision_id,
        "consumer": consumer,
        "provider": provider,
        "instrument": instrument,
        **more,
    }
    return {key: value for key, value in fields.items() if value is not None}


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (orjson); see the module docstring.

    It works wherever a ``logging.Formatter`` does, including ``dictConfig``::

        "formatters": {"json": {"()": "meltica_trio.JsonFormatter"}}
    """

    def format(self, record: logging.LogRecord) -> str:
        """One JSON object, no trailing newline (the handler adds it)."""
        document: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and key not in document and value is not None:
                document[key] = value
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exc"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(document, default=_fallback).decode()


def _timestamp(created: float) -> str:
    moment = dt.datetime.fromtimestamp(created, dt.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _fallback(value: object) -> str:
    # An extra orjson cannot encode (a Decimal, an enum of str...) is logged as text
    # rather than losing the line.
    return str(value)


def configure_logging(
    *, json: bool = False, level: int | str = logging.WARNING, stream: TextIO | None = None
) -> logging.Handler:
    """Send the root logger's records to ``stream`` (stderr) as text or JSON lines.

    Logging is process-wide, so an application calls this once at start; a library
    never should. Handlers the root logger had are removed and closed, as
    ``logging.basicConfig(force=True)`` does.

    Returns:
        The handler installed.
    """
    handler = _handler(json, stream)
    for old in _install(handler, level)[0]:
        old.close()
    return handler


@contextmanager
def logging_configured(
    *, json: bool = False, level: int | str = logging.WARNING, stream: TextIO | None = None
) -> Iterator[logging.Handler]:
    """Like :func:`configure_logging` for the ``with`` block only (the CLI's ``main``).

    The root logger's handlers and level are put back afterwards, so calling the
    command line in-process (tests, notebooks) leaves logging as it found it.
    """
    handler = _handler(json, stream)
    handlers, previous_level = _install(handler, level)
    try:
        yield handler
    finally:
        root = logging.getLogger()
        root.removeHandler(handler)
        handler.close()
        for old in handlers:
            root.addHandler(old)
        root.setLevel(previous_level)


def _handler(json: bool, stream: TextIO | None) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(TEXT_FORMAT))
    return handler


def _install(handler: logging.Handler, level: int | str) -> tuple[list[logging.Handler], int]:
    """Make ``handler`` the root logger's only one; returns what it had before."""
    root = logging.getLogger()
    handlers, previous_level = list(root.handlers), root.level
    for old in handlers:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handlers, previous_level
