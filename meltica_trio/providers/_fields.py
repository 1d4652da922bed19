"""Typed field readers shared by the venue parsers.

Each reader checks one field of a decoded JSON document and returns it typed, or
raises :class:`~meltica_trio.DecodeError` naming the field's path
(``"data.b[3]"``), so a malformed frame is reported where it is wrong. Decimal
fields are checked as text and returned unchanged: ``"0.35130000"`` stays as written.
"""

from __future__ import annotations

import re
from typing import Final

from meltica_trio._errors import DecodeError
from meltica_trio.events import Level

JsonObject = dict[str, object]
"""A decoded JSON object."""

# The codec's grammar for an exact decimal, so anything a parser accepts also encodes.
_DECIMAL: Final = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# Book prices and sizes are never negative.
_UNSIGNED: Final = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_DIGITS: Final = re.compile(r"-?[0-9]{1,20}")  # int64 and then some; no huge ints
NS_PER_MS: Final = 1_000_000


def join(path: str, key: str) -> str:
    """The path of ``key`` inside the object at ``path``."""
    return f"{path}.{key}" if path else key


def obj(value: object, path: str) -> JsonObject:
    """``value`` as a JSON object, else DecodeError."""
    if type(value) is not dict:
        raise DecodeError(f"expected an object, got {type(value).__name__}", path)
    return value


def array(value: object, path: str) -> list[object]:
    """``value`` as a JSON array, else DecodeError."""
    if type(value) is not list:
        raise DecodeError(f"expected an array, got {type(value).__name__}", path)
    return value


def get(doc: JsonObject, key: str, path: str) -> object:
    """The required field ``key`` of ``doc``, else DecodeError."""
    try:
        return doc[key]
    except KeyError:
        raise DecodeError("missing field", join(path, key)) from None


def text(doc: JsonObject, key: str, path: str) -> str:
    """The required string field ``key``."""
    value = get(doc, key, path)
    if type(value) is not str:
        raise DecodeError(f"expected a string, got {type(value).__name__}", join(path, key))
    return value


def optional_text(doc: JsonObject, key: str, path: str) -> str | None:
    """The string field ``key``, or ``None`` when absent or null."""
    value = doc.get(key)
    if value is None:
        return None
    if type(value) is not str:
        raise DecodeError(f"expected a string, got {type(value).__name__}", join(path, key))
    return value


def decimal(doc: JsonObject, key: str, path: str) -> str:
    """The required exact-decimal string field ``key``, unchanged."""
    value = get(doc, key, path)
    if type(value) is not str or not _DECIMAL.fullmatch(value):
        raise DecodeError(f"expected a decimal string, got {value!r:.40}", join(path, key))
    return value


def integer(doc: JsonObject, key: str, path: str) -> int:
    """The required integer field ``key`` (a JSON number; booleans are refused)."""
    value = get(doc, key, path)
    if type(value) is not int:
        raise DecodeError(f"expected an integer, got {value!r:.40}", join(path, key))
    return value


def optional_integer(doc: JsonObject, key: str, path: str) -> int | None:
    """The integer field ``key``, or ``None`` when absent or null."""
    if doc.get(key) is None:
        return None
    return integer(doc, key, path)


def int_text(doc: JsonObject, key: str, path: str) -> int:
    """The required integer written as a string (OKX ``ts``, ``tradeId``)."""
    value = get(doc, key, path)
    if type(value) is not str or not _DIGITS.fullmatch(value):
        raise DecodeError(f"expected an integer string, got {value!r:.40}", join(path, key))
    return int(value)


def boolean(doc: JsonObject, key: str, path: str) -> bool:
    """The required boolean field ``key``."""
    value = get(doc, key, path)
    if type(value) is not bool:
        raise DecodeError(f"expected a boolean, got {value!r:.40}", join(path, key))
    return value


def levels(value: object, path: str) -> tuple[Level, ...]:
    """A list of ``[price, size, ...]`` arrays as ``(price, size)`` tuples, unchanged.

    Extra elements (OKX's liquidated-orders and order counts) are ignored. Prices and
    sizes must be non-negative exact decimal strings.
    """
    if type(value) is not list:
        raise DecodeError(f"expected an array of levels, got {type(value).__name__}", path)
    out: list[Level] = []
    match = _UNSIGNED.fullmatch
    for i, level in enumerate(value):
        if type(level) is list and len(level) >= 2:
            price, size = level[0], level[1]
            if type(price) is str and type(size) is str and match(price) and match(size):
                out.append((price, size))
                continue
        raise DecodeError("expected [price, size] as non-negative decimal strings", f"{path}[{i}]")
    return tuple(out)
