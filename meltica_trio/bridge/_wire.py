"""What stream entries carry, both ways, checked strictly on the way in (sans-I/O).

Data entries (market data and critical streams)::

    e   the event, as :func:`~meltica_trio.events.encode_event` writes it
    id  critical entries only: the apply id, the same for every copy of one event
        (``exec:<exec_id>`` for execution reports, ``<origin>:<event_id>`` otherwise)

Control entries (workers to the pipeline)::

    t   "attach" or "command"
    b   JSON: an attachment {"group", "instruments", "kinds", "providers"} or a command
        {"command": "submit_order" | "cancel_order" | "query_order", <its fields>}

Anything else in an entry is a :class:`~meltica_trio.DecodeError`: a reader sends it to
the dead-letter stream and goes on.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, Final, TypeAlias

import attrs
import orjson
from coredis.response.types import StreamEntry

from meltica_trio._errors import DecodeError
from meltica_trio.bus import CancelOrder, QueryOrder, SubmitOrder
from meltica_trio.bus._commands import COMMAND_NAMES
from meltica_trio.events import Event, ExecReport, Kind, decode_event, encode_event

from ._config import Attachment

EVENT: Final = b"e"
APPLY_ID: Final = b"id"
TYPE: Final = b"t"
BODY: Final = b"b"
ATTACH: Final = b"attach"
COMMAND: Final = b"command"

RemoteCommand: TypeAlias = SubmitOrder | CancelOrder | QueryOrder
"""The commands a remote consumer may send: its orders."""

Fields: TypeAlias = dict[bytes, bytes]
"""One stream entry's field-value pairs."""

_REMOTE: Final[dict[str, type[RemoteCommand]]] = {
    COMMAND_NAMES[cls]: cls for cls in (SubmitOrder, CancelOrder, QueryOrder)
}
_FILTERS: Final = ("instruments", "kinds", "providers")


def id_of(entry: StreamEntry) -> bytes:
    """An entry's id (the bridge's clients return bytes, never text)."""
    return typing.cast(bytes, entry.identifier)


def fields_of(entry: StreamEntry) -> Mapping[bytes, bytes]:
    """An entry's field-value pairs (bytes, as the bridge's clients return them)."""
    return typing.cast(Mapping[bytes, bytes], entry.field_values)


def apply_id(event: Event, origin: str) -> str:
    """The id that makes applying ``event`` idempotent on the receiving side.

    An execution report is identified by its ``exec_id`` wherever it comes from;
    other critical events by the exporter that minted the entry (``origin``, unique
    per exporter run) and their ``event_id``.
    """
    payload = event.payload
    if isinstance(payload, ExecReport):
        return f"exec:{payload.exec_id}"
    return f"{origin}:{event.event_id}"


def critical_fields(event: Event, apply: str) -> Fields:
    """A critical stream entry for ``event``."""
    return {EVENT: encode_event(event), APPLY_ID: apply.encode()}


def market_fields(event: Event) -> Fields:
    """A market data stream entry for ``event``."""
    return {EVENT: encode_event(event)}


def decode_entry(fields: Mapping[bytes, bytes]) -> tuple[Event, str | None]:
    """The event of a data entry and its apply id (None on market data entries).

    Raises:
        DecodeError: a missing or unexpected field, or an event that does not decode.
    """
    unexpected = sorted(set(fields) - {EVENT, APPLY_ID})
    if unexpected:
        names = ", ".join(repr(name) for name in unexpected)
        raise DecodeError(f"unexpected field(s) {names} in a data entry")
    data = fields.get(EVENT)
    if data is None:
        raise DecodeError("a data entry needs an 'e' field (the event)")
    event = decode_event(data)
    raw_id = fields.get(APPLY_ID)
    if raw_id is None:
        return event, None
    try:
        apply = raw_id.decode()
    except UnicodeDecodeError as exc:
        raise DecodeError(f"apply id is not UTF-8: {exc}", "id") from exc
    if not apply:
        raise DecodeError("apply id is empty", "id")
    return event, apply


def market_kind(event: Event) -> Kind:
    """``event``'s kind, checked to be market data (a critical kind is a DecodeError)."""
    if event.kind.is_critical:
        raise DecodeError(f"a {event.kind.value} event on a market data stream", "kind")
    return event.kind


# -- control entries -----------------------------------------------------------------


def command_fields(command: RemoteCommand) -> Fields:
    """A control entry carrying ``command``."""
    body = {"command": COMMAND_NAMES[type(command)], **attrs.asdict(command)}
    return {TYPE: COMMAND, BODY: orjson.dumps(body)}


def attachment_json(attachment: Attachment) -> bytes:
    """An attachment as JSON (filters as sorted arrays, or null for every value)."""
    document: dict[str, Any] = {"group": attachment.group}
    for name in _FILTERS:
        values = getattr(attachment, name)
        document[name] = None if values is None else sorted(str(v) for v in values)
    return orjson.dumps(document)


def attachment_fields(attachment: Attachment) -> Fields:
    """A control entry asking the pipeline to attach a remote consumer."""
    return {TYPE: ATTACH, BODY: attachment_json(attachment)}


def decode_control(fields: Mapping[bytes, bytes]) -> RemoteCommand | Attachment:
    """The command or attachment a control entry carries.

    Raises:
        DecodeError: anything but exactly ``t`` and ``b``, an unknown type, or a body
            that is not one of the remote commands or an attachment, field by field.
    """
    if set(fields) != {TYPE, BODY}:
        raise DecodeError("a control entry has exactly the fields 't' and 'b'")
    kind, body = fields[TYPE], fields[BODY]
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"malformed JSON: {exc}", "b") from exc
    if not isinstance(document, dict):
        raise DecodeError("the body is a JSON object", "b")
    if kind == ATTACH:
        return parse_attachment(document)
    if kind == COMMAND:
        return _parse_command(document)
    raise DecodeError(f"unknown control entry type {kind!r}", "t")


def parse_attachment(document: object) -> Attachment:
    """An attachment from its JSON document (see :func:`attachment_json`).

    Raises:
        DecodeError: a missing or unexpected field, or a value of the wrong type.
    """
    if not isinstance(document, dict) or set(document) != {"group", *_FILTERS}:
        raise DecodeError(f"an attachment has exactly the fields group, {', '.join(_FILTERS)}")
    filters: dict[str, Any] = {}
    for name in _FILTERS:
        values = document[name]
        if values is not None and (
            not isinstance(values, list) or not all(isinstance(v, str) for v in values)
        ):
            raise DecodeError("expected null or an array of strings", name)
        filters[name] = values
    try:
        return Attachment(group=document["group"], **filters)
    except ValueError as exc:  # ConfigError is a ValueError
        raise DecodeError(str(exc), "b") from exc


def _parse_command(document: dict[str, Any]) -> RemoteCommand:
    name = document.pop("command", None)
    cls = _REMOTE.get(name) if isinstance(name, str) else None
    if cls is None:
        allowed = ", ".join(sorted(_REMOTE))
        raise DecodeError(f"command {name!r} may not come from a worker (one of {allowed})")
    hints = typing.get_type_hints(cls)
    names = {field.name for field in attrs.fields(cls)}
    if set(document) != names:
        missing = sorted(names - set(document))
        unexpected = sorted(set(document) - names)
        raise DecodeError(f"{name}: missing {missing}, unexpected {unexpected}", "b")
    for field, value in document.items():
        _check_value(hints[field], value, field)
    try:
        return cls(**document)
    except ValueError as exc:  # an unknown side
        raise DecodeError(str(exc), "b") from exc


def _check_value(hint: Any, value: object, path: str) -> None:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        if value is None:
            return
        (hint,) = (arg for arg in typing.get_args(hint) if arg is not type(None))
    if hint is str or (isinstance(hint, type) and issubclass(hint, str)):
        if type(value) is not str:
            raise DecodeError(f"expected a string, got {type(value).__name__}", path)
        return
    raise DecodeError(f"no check for {hint!r}", path)  # pragma: no cover (schema drift)
