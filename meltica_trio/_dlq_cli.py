"""``meltica-trio dlq``: list, show, export and replay the entries of a DLQ file.

A pipeline writes the file when ``PipelineConfig.dlq_path`` is set (the demo:
``--dlq-file``); the format is in :mod:`meltica_trio.telemetry._journal`. Replay
runs a consumer function, typically one just fixed, on the decoded event of an
entry, outside any pipeline, with a context whose trading switch is off: whatever
the function does, a replay never sends an order (it is refused locally and shown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, Final, TextIO

import attrs
import orjson
import trio

from meltica_trio._errors import DecodeError
from meltica_trio.consumers import ConsumerContext, Handler
from meltica_trio.events import ControlAck, ControlResult
from meltica_trio.telemetry import DeadLetterFile, DeadLetterRecord, read_dead_letters

DLQ_FILE_ENV: Final = "MELTICA_DLQ_FILE"
"""Environment variable naming the DLQ file when ``--file`` is not given."""
DEFAULT_DLQ_FILE: Final = "meltica-dlq.jsonl"
"""The DLQ file when neither ``--file`` nor ``MELTICA_DLQ_FILE`` says."""
ERROR_WIDTH: Final = 60
"""Characters of the error shown per entry by ``dlq list``."""


# -- replay (library) ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ReplayOutcome:
    """What a replay did.

    Attributes:
        letter_id: the entry replayed.
        consumer_id: the id the function ran as.
        ok: the function returned without raising.
        error: ``"Type: message"`` when it raised.
        traceback: the formatted traceback when it raised.
        answers: control answers the function's context produced (an order is
            refused locally, so a replay shows what the function tried to send).
    """

    letter_id: str
    consumer_id: str
    ok: bool
    error: str | None = None
    traceback: str | None = None
    answers: tuple[ControlAck | ControlResult, ...] = ()


def load_handler(spec: str) -> Handler:
    """The consumer function named ``module:attribute`` (``pkg.mod:Class.method`` too).

    Raises:
        ValueError: the spec has no ``:``, or names something not callable.
        ImportError: the module cannot be imported.
        AttributeError: the module has no such attribute.
    """
    module_name, sep, path = spec.partition(":")
    if not sep or not module_name or not path:
        raise ValueError(f"expected module:function, got {spec!r}")
    target: Any = importlib.import_module(module_name)
    for part in path.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{spec} is not callable")
    return target  # type: ignore[no-any-return]


async def replay_dead_letter(
    record: DeadLetterRecord, fn: Handler, *, consumer_id: str | None = None
) -> ReplayOutcome:
    """Run ``fn`` on the event of ``record`` once, as consumer ``consumer_id``.

    The event is a fresh, unpooled copy decoded from the entry. The context is not
    attached to a control bus and its trading switch is off, so orders, cancels
    and queries are answered locally (see :attr:`ReplayOutcome.answers`).

    Raises:
        DecodeError: the entry holds no event this build can decode.
    """
    event = record.event()
    consumer_id = consumer_id or record.consumer_id
    answers: list[ControlAck | ControlResult] = []
    ctx = ConsumerContext(consumer_id, deliver=lambda _, answer: answers.append(answer))
    try:
        result = fn(event, ctx)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        return ReplayOutcome(
            letter_id=record.letter_id,
            consumer_id=consumer_id,
            ok=False,
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(exc)),
            answers=tuple(answers),
        )
    return ReplayOutcome(
        letter_id=record.letter_id, consumer_id=consumer_id, ok=True, answers=tuple(answers)
    )


# -- the command line --------------------------------------------------------------------


def add_dlq_commands(commands: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Register ``dlq list|show|export|replay`` on the CLI's subcommands."""
    dlq = commands.add_parser(
        "dlq", help="list, show, export and replay dead letters from a DLQ file"
    )
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    source = argparse.ArgumentParser(add_help=False)
    source.add_argument(
        "--file",
        default=None,
        help=f"the DLQ file (default: ${DLQ_FILE_ENV}, else {DEFAULT_DLQ_FILE})",
    )
    common = [*parents, source]
    listing = actions.add_parser("list", parents=common, help="one line per entry")
    listing.add_argument("--consumer-id", help="only this consumer's entries")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    show = actions.add_parser("show", parents=common, help="one entry in full")
    show.add_argument("id", help="the entry's id (a unique prefix will do)")
    export = actions.add_parser("export", parents=common, help="write entries as JSONL")
    export.add_argument("path", help="where to write ('-': standard output)")
    export.add_argument("--consumer-id", help="only this consumer's entries")
    replay = actions.add_parser(
        "replay", parents=common, help="run a (fixed) consumer function on an entry's event"
    )
    replay.add_argument("id", help="the entry's id (a unique prefix will do)")
    replay.add_argument(
        "--consumer", required=True, metavar="MODULE:FUNCTION", help="the function to run"
    )
    replay.add_argument("--as", dest="as_id", help="consumer id to run as (default: the entry's)")


def run_dlq(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Carry out a parsed ``dlq`` command; 0 on success, 1 on failure."""
    out = out or sys.stdout
    path = args.file or os.environ.get(DLQ_FILE_ENV) or DEFAULT_DLQ_FILE
    try:
        dlq = read_dead_letters(path)
    except OSError as exc:
        print(f"meltica-trio dlq: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    for line, reason in dlq.problems:
        print(f"meltica-trio dlq: {path}:{line}: skipped: {reason}", file=sys.stderr)
    if args.dlq_command == "list":
        _list(dlq, args.consumer_id, args.json, out)
        return 0
    if args.dlq_command == "export":
        return _export(dlq, args.path, args.consumer_id, out)
    try:
        record = dlq.find(args.id)
    except KeyError as exc:
        print(f"meltica-trio dlq: {exc.args[0]} in {path}", file=sys.stderr)
        return 1
    if args.dlq_command == "show":
        _show(record, out)
        return 0
    return _replay(record, args.consumer, args.as_id, out)


def _selected(dlq: DeadLetterFile, consumer_id: str | None) -> list[DeadLetterRecord]:
    return [r for r in dlq.records if consumer_id is None or r.consumer_id == consumer_id]


def _when(wall_ns: int) -> str:
    moment = dt.datetime.fromtimestamp(wall_ns / 1e9, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _list(dlq: DeadLetterFile, consumer_id: str | None, as_json: bool, out: TextIO) -> None:
    records = _selected(dlq, consumer_id)
    if as_json:
        for record in records:
            summary = attrs.asdict(record, filter=lambda a, _: a.name != "event_document")
            out.write(orjson.dumps(summary, option=orjson.OPT_APPEND_NEWLINE).decode())
        return
    header = ("ID", "TIME (UTC)", "CONSUMER", "EVENT", "TRACE", "ERROR")
    rows = [
        (
            r.letter_id,
            _when(r.wall_ns),
            r.consumer_id,
            f"{r.kind} {r.provider} {r.instrument}".strip(),
            r.trace_id or "-",
            _clip(r.error, ERROR_WIDTH),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )
    print(f"{len(rows)} entries", file=out)


def _clip(text: str, width: int) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[: width - 3] + "..."


def _show(record: DeadLetterRecord, out: TextIO) -> None:
    fields = (
        ("id", record.letter_id),
        ("time", _when(record.wall_ns)),
        ("consumer", record.consumer_id),
        ("event", f"{record.kind} #{record.event_id} {record.provider} {record.instrument}"),
        ("seq", str(record.seq)),
        ("trace_id", str(record.trace_id)),
        ("decision_id", str(record.decision_id)),
        ("error", record.error),
    )
    for name, value in fields:
        print(f"{name + ':':<13}{value}", file=out)
    print("\ntraceback:\n" + record.traceback.rstrip(), file=out)
    if record.event_document is None:
        print(f"\nevent: not kept ({record.event_error})", file=out)
    else:
        event = orjson.dumps(record.event_document, option=orjson.OPT_INDENT_2).decode()
        print("\nevent:\n" + event, file=out)


def _export(dlq: DeadLetterFile, path: str, consumer_id: str | None, out: TextIO) -> int:
    records = _selected(dlq, consumer_id)
    data = b"".join(orjson.dumps(r.as_dict(), option=orjson.OPT_APPEND_NEWLINE) for r in records)
    if path == "-":
        out.write(data.decode())
        return 0
    try:
        with open(path, "wb") as file:
            file.write(data)
    except OSError as exc:
        print(f"meltica-trio dlq: cannot write {path}: {exc}", file=sys.stderr)
        return 1
    print(f"{len(records)} entries written to {path}", file=out)
    return 0


def _replay(record: DeadLetterRecord, spec: str, as_id: str | None, out: TextIO) -> int:
    # Like other runners of ``module:function`` specs, look in the working directory
    # first: the fixed consumer usually lives in the project the operator is in.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        fn = load_handler(spec)
    except (ImportError, AttributeError, ValueError) as exc:
        print(f"meltica-trio dlq replay: cannot load {spec}: {exc}", file=sys.stderr)
        return 1
    try:
        outcome = trio.run(functools.partial(replay_dead_letter, record, fn, consumer_id=as_id))
    except DecodeError as exc:
        print(f"meltica-trio dlq replay: {record.letter_id}: {exc}", file=sys.stderr)
        return 1
    for answer in outcome.answers:
        if isinstance(answer, ControlResult):
            print(f"refused {answer.command}: {answer.reason}", file=out)
    if outcome.ok:
        print(f"replayed {record.letter_id} into {spec} as {outcome.consumer_id}: ok", file=out)
        return 0
    print(f"replayed {record.letter_id} into {spec}: it raised again", file=out)
    print((outcome.traceback or "").rstrip(), file=out)
    return 1
