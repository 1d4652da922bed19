"""Events to JSON and back, with orjson, checked against the schema on the way in.

The wire shape is the envelope's fields plus ``payload`` as an object whose keys are
the payload class's fields; enums travel as their values and tuples as arrays::

    {"event_id": 7, "kind": "trade", "provider": "binance", "instrument": "BTC-USDT",
     "seq": 123, "ingest_ts": 1634000000000000000, "emit_ts": 0, "routing_version": 1,
     "trace_id": null, "decision_id": null, "schema_version": 1,
     "payload": {"price": "57000.1", "size": "0.02", "side": "buy",
                 "trade_id": "9911", "trade_ts": 1634000000000000000}}

Decoding validates every field before building anything, so a partly built event
never escapes: the result is a complete :class:`Event` or a :class:`DecodeError`.
"""

from __future__ import annotations

import enum
import functools
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import orjson

from meltica_trio._defaults import SCHEMA_VERSION
from meltica_trio._errors import DecodeError

from ._envelope import Event
from ._kind import Kind
from ._payloads import EXACT_DECIMAL, PAYLOAD_TYPE

# [0-9], not \d: \d also matches the digits of other scripts (Arabic-Indic, fullwidth),
# which Python's Decimal reads but no venue sends and other decoders reject.
_DECIMAL: Final = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_ENVELOPE_FIELDS: Final = tuple(f.name for f in attrs.fields(Event) if f.name != "payload")

E = typing.TypeVar("E", bound=enum.Enum)

Check = Callable[[Any, str], Any]
"""Validates one JSON value at a path and returns it in its Python shape."""


def encode_event(event: Event) -> bytes:
    """The event as UTF-8 JSON bytes.

    Raises:
        ValueError: the event has no payload, or one of the wrong class for its kind.
    """
    payload = event.payload
    expected = PAYLOAD_TYPE[event.kind]
    if type(payload) is not expected:
        raise ValueError(
            f"a {event.kind.value} event needs a {expected.__name__} payload, "
            f"not {type(payload).__name__}"
        )
    document = {name: getattr(event, name) for name in _ENVELOPE_FIELDS}
    document["payload"] = payload
    return orjson.dumps(document, default=_attrs_to_dict)


def _attrs_to_dict(obj: object) -> dict[str, Any]:
    if attrs.has(type(obj)):
        return attrs.asdict(obj, recurse=False)  # type: ignore[arg-type]
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def decode_event(data: bytes | bytearray | memoryview | str) -> Event:
    """A new (not pooled) event from JSON produced by :func:`encode_event`.

    Raises:
        DecodeError: malformed JSON, an unknown kind, another schema version, a
            missing, unexpected or mistyped field; ``err.path`` says where.
    """
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"malformed JSON: {exc}") from exc
    return decode_event_dict(document)


def decode_event_dict(document: object) -> Event:
    """Like :func:`decode_event`, for a document already parsed from JSON."""
    if not isinstance(document, dict):
        raise DecodeError(f"an event is a JSON object, not {_json_type(document)}")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DecodeError(
            f"schema_version {version!r} is not supported (this build reads {SCHEMA_VERSION})",
            "schema_version",
        )
    kind = _check_enum(Kind, document.get("kind"), "kind")
    fields = _check_object(_ENVELOPE_CHECKS, document, "", ignore=("payload",))
    fields["payload"] = _PAYLOAD_CHECKS[kind](document.get("payload"), "payload")
    return Event(**fields)


# -- schema-driven checks ------------------------------------------------------


def _payload_check(cls: type[Any]) -> Check:
    hints = typing.get_type_hints(cls, include_extras=True)
    checks = {f.name: _check_for(hints[f.name]) for f in attrs.fields(cls)}
    optional = frozenset(f.name for f in attrs.fields(cls) if f.default is not attrs.NOTHING)

    def check(value: Any, path: str) -> Any:
        return cls(**_check_object(checks, value, path, optional=optional))

    return check


def _check_object(
    checks: Mapping[str, Check],
    value: Any,
    path: str,
    *,
    optional: frozenset[str] = frozenset(),
    ignore: tuple[str, ...] = (),
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DecodeError(f"expected an object, got {_json_type(value)}", path)
    unexpected = sorted(set(value) - set(checks) - set(ignore))
    if unexpected:
        raise DecodeError(f"unexpected field(s) {', '.join(unexpected)}", path)
    missing = sorted(set(checks) - set(value) - optional)
    if missing:
        raise DecodeError(f"missing field(s) {', '.join(missing)}", path)
    prefix = f"{path}." if path else ""
    return {
        name: check(value[name], prefix + name) for name, check in checks.items() if name in value
    }


def _check_for(hint: Any) -> Check:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        if EXACT_DECIMAL in args[1:]:
            return _check_decimal
        return _check_for(args[0])
    if origin in (types.UnionType, typing.Union):
        inner = [arg for arg in args if arg is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union {hint!r}")
        return _nullable(_check_for(inner[0]))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _array_of(_check_for(args[0]))
        return _fixed_array(tuple(_check_for(arg) for arg in args))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return functools.partial(_check_enum, hint)
    if isinstance(hint, type) and attrs.has(hint):
        return _payload_check(hint)
    if hint in (str, int, bool):
        return functools.partial(_check_exact_type, hint)
    raise TypeError(f"no JSON check for {hint!r}")


def _check_exact_type(expected: type, value: Any, path: str) -> Any:
    # type() rather than isinstance(): JSON true must not pass for an int.
    if type(value) is not expected:
        raise DecodeError(f"expected {expected.__name__}, got {_json_type(value)}", path)
    return value


def _check_decimal(value: Any, path: str) -> str:
    if type(value) is not str:
        raise DecodeError(f"expected a decimal string, got {_json_type(value)}", path)
    if not _DECIMAL.fullmatch(value):
        raise DecodeError(f"{value!r} is not an exact decimal number", path)
    return value


def _check_enum(cls: type[E], value: Any, path: str) -> E:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in cls)
        raise DecodeError(f"unknown {cls.__name__} {value!r} (one of {allowed})", path) from None


def _nullable(check: Check) -> Check:
    def nullable(value: Any, path: str) -> Any:
        return None if value is None else check(value, path)

    return nullable


def _array_of(check: Check) -> Check:
    def array_of(value: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise DecodeError(f"expected an array, got {_json_type(value)}", path)
        return tuple(check(item, f"{path}[{i}]") for i, item in enumerate(value))

    return array_of


def _fixed_array(checks: tuple[Check, ...]) -> Check:
    def fixed_array(value: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(value, list) or len(value) != len(checks):
            raise DecodeError(f"expected an array of {len(checks)}, got {value!r}", path)
        pairs = enumerate(zip(checks, value, strict=True))
        return tuple(check(item, f"{path}[{i}]") for i, (check, item) in pairs)

    return fixed_array


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


_ENVELOPE_HINTS: Final = typing.get_type_hints(Event, include_extras=True)
_ENVELOPE_CHECKS: Final = {name: _check_for(_ENVELOPE_HINTS[name]) for name in _ENVELOPE_FIELDS}
_PAYLOAD_CHECKS: Final = {kind: _payload_check(cls) for kind, cls in PAYLOAD_TYPE.items()}
