"""Binance spot order API, sans I/O: signing, request parameters, answers to updates.

Signed requests (``POST/GET/DELETE /api/v3/order``) carry every parameter in the
query string, then ``recvWindow`` and ``timestamp`` (ms), then ``signature``: the
HMAC-SHA256 of that query string (everything before ``&signature=``) keyed by the
API secret, as lowercase hex. The API key travels in the ``X-MBX-APIKEY`` header.

Exec ids (unique per venue event; the same event seen twice gets the same id)::

    stream executionReport   "{i}:{x}:{t}" for x == TRADE (t: the trade id)
                             "{i}:{x}:{E}" otherwise (E: the event time, ms)
    REST new order (ACK)     "{orderId}:rest:ACK"
    REST order answer        "{orderId}:rest:{status}:{executedQty}"

A REST answer and the stream event for the same change have different ids; the
order state machine still reports the change once (an update that adds nothing
to what it knows is stale).

Status mapping (order status ``X`` / ``status``)::

    NEW, PENDING_NEW        -> ACK          FILLED              -> FILLED
    PARTIALLY_FILLED        -> PARTIAL      CANCELED            -> CANCELLED
    PENDING_CANCEL          -> ACK/PARTIAL  REJECTED            -> REJECTED
                               (by filled)  EXPIRED,
                                            EXPIRED_IN_MATCH    -> EXPIRED
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final
from urllib.parse import urlencode

import attrs
import orjson

from meltica_trio._errors import DecodeError
from meltica_trio.events import OrderState, Side

from ._client import VenueOrder, VenueUpdate
from ._errors import (
    DuplicateOrderError,
    UnknownOrderError,
    VenueError,
    VenueRejectedError,
    VenueUnavailableError,
)

ORDER_PATH: Final = "/api/v3/order"
USER_STREAM_PATH: Final = "/api/v3/userDataStream"

STATUS: Final[Mapping[str, OrderState]] = {
    "NEW": OrderState.ACK,
    "PENDING_NEW": OrderState.ACK,
    "PARTIALLY_FILLED": OrderState.PARTIAL,
    "FILLED": OrderState.FILLED,
    "CANCELED": OrderState.CANCELLED,
    "REJECTED": OrderState.REJECTED,
    "EXPIRED": OrderState.EXPIRED,
    "EXPIRED_IN_MATCH": OrderState.EXPIRED,
}
"""Binance order status -> canonical state (PENDING_CANCEL is decided by filled)."""

UNKNOWN_ORDER_CODES: Final = frozenset({-2013, -2011})
"""``-2013`` "Order does not exist." (query), ``-2011`` "Unknown order sent." (cancel)."""

DUPLICATE_CODE: Final = -2010
"""``NEW_ORDER_REJECTED``; with the message "Duplicate order sent." the id is taken."""

UNKNOWN_STATUS_CODES: Final = frozenset({-1006, -1007, -1008})
"""Unexpected bus response / backend timeout / server busy: execution status unknown."""

_SIDES: Final = {Side.BUY: "BUY", Side.SELL: "SELL"}


def sign(secret: str, payload: str) -> str:
    """HMAC-SHA256 of ``payload`` keyed by ``secret``, lowercase hex (Binance SIGNED)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_query(
    params: Sequence[tuple[str, str]], *, secret: str, timestamp_ms: int, recv_window_ms: int
) -> str:
    """The full query string of a SIGNED request, ``signature`` last."""
    payload = urlencode(
        [*params, ("recvWindow", str(recv_window_ms)), ("timestamp", str(timestamp_ms))]
    )
    return f"{payload}&signature={sign(secret, payload)}"


def glued_symbol(instrument: str) -> str:
    """``"BTC-USDT"`` -> ``"BTCUSDT"``, the symbol Binance order endpoints take."""
    return instrument.upper().replace("-", "")


def new_order_params(order: VenueOrder, symbol: str) -> list[tuple[str, str]]:
    """Parameters of ``POST /api/v3/order``: LIMIT GTC with a price, MARKET without.

    The answer asked for is ``ACK`` (see :func:`parse_ack`).
    """
    params = [("symbol", symbol), ("side", _SIDES[order.side])]
    if order.price is None:
        params.append(("type", "MARKET"))
    else:
        params += [("type", "LIMIT"), ("timeInForce", "GTC")]
    params.append(("quantity", order.quantity))
    if order.price is not None:
        params.append(("price", order.price))
    params += [("newClientOrderId", order.venue_client_order_id), ("newOrderRespType", "ACK")]
    return params


def ref_params(venue_client_order_id: str, symbol: str) -> list[tuple[str, str]]:
    """Parameters naming an order in ``GET``/``DELETE /api/v3/order``."""
    return [("symbol", symbol), ("origClientOrderId", venue_client_order_id)]


def _field(doc: Mapping[str, object], key: str, kind: type | tuple[type, ...]) -> object:
    value = doc.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DecodeError(f"missing or not {kind}", key)
    return value


def _state(status: str, filled: str) -> OrderState:
    if status == "PENDING_CANCEL":
        try:
            traded = Decimal(filled) > 0
        except ArithmeticError:
            raise DecodeError(f"{filled!r} is not a decimal", "executedQty") from None
        return OrderState.PARTIAL if traded else OrderState.ACK
    try:
        return STATUS[status]
    except KeyError:
        raise DecodeError(f"unknown order status {status!r}", "status") from None


def parse_ack(body: object) -> VenueUpdate:
    """The ``ACK`` answer to a new order: the venue holds it (ACK, nothing filled yet).

    What happened to the order next (fills, expiry) is for the stream to tell.

    Raises:
        DecodeError: not an acknowledgement.
    """
    if not isinstance(body, Mapping):
        raise DecodeError("an order answer must be an object")
    order_id = _field(body, "orderId", int)
    return VenueUpdate(
        venue_client_order_id=str(_field(body, "clientOrderId", str)),
        exec_id=f"{order_id}:rest:ACK",
        state=OrderState.ACK,
        filled="0",
        venue_order_id=str(order_id),
    )


def parse_order(body: object) -> VenueUpdate:
    """A REST order answer (new with RESULT/FULL, query, cancel) to a VenueUpdate.

    Raises:
        DecodeError: not an order document.
    """
    if not isinstance(body, Mapping):
        raise DecodeError("an order answer must be an object")
    order_id = str(_field(body, "orderId", int))
    status = str(_field(body, "status", str))
    filled = str(_field(body, "executedQty", str))
    # A cancel answers with the cancel's own clientOrderId and the order's as orig.
    client_id = body.get("origClientOrderId") or _field(body, "clientOrderId", str)
    fills = body.get("fills")
    last_price = None
    if isinstance(fills, list) and fills and isinstance(fills[-1], Mapping):
        price = fills[-1].get("price")
        last_price = price if isinstance(price, str) else None
    return VenueUpdate(
        venue_client_order_id=str(client_id),
        exec_id=f"{order_id}:rest:{status}:{filled}",
        state=_state(status, filled),
        filled=filled,
        venue_order_id=order_id,
        last_fill_price=last_price,
    )


@attrs.frozen
class ListenKeyExpired:
    """The user data stream's listenKey expired: reconnect with a new one."""


def parse_user_event(raw: str | bytes) -> VenueUpdate | ListenKeyExpired | None:
    """One user-data-stream message; None for events the gateway does not use.

    Accepts the raw event and the ``{"subscriptionId": .., "event": {..}}`` wrapping.

    Raises:
        DecodeError: not JSON, or an executionReport with a field missing.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from exc
    if isinstance(doc, dict) and isinstance(doc.get("event"), dict):
        doc = doc["event"]
    if not isinstance(doc, dict):
        raise DecodeError("a user data event must be an object")
    kind = doc.get("e")
    if kind == "listenKeyExpired":
        return ListenKeyExpired()
    if kind != "executionReport":
        return None
    return parse_execution_report(doc)


def parse_execution_report(doc: Mapping[str, object]) -> VenueUpdate:
    """An ``executionReport`` event to a VenueUpdate (exec id: see the module docstring).

    Raises:
        DecodeError: a field is missing or of the wrong type.
    """
    execution = str(_field(doc, "x", str))
    order_id = _field(doc, "i", int)
    trade_id = _field(doc, "t", int)
    event_ts = _field(doc, "E", int)
    filled = str(_field(doc, "z", str))
    status = str(_field(doc, "X", str))
    # On a cancel, c is the cancel request's id and C the order's own.
    client_id = doc.get("C") or _field(doc, "c", str)
    traded = execution == "TRADE"
    reason = doc.get("r")
    return VenueUpdate(
        venue_client_order_id=str(client_id),
        exec_id=f"{order_id}:{execution}:{trade_id if traded else event_ts}",
        state=_state(status, filled),
        filled=filled,
        venue_order_id=str(order_id),
        last_fill_price=str(_field(doc, "L", str)) if traded else None,
        last_fill_size=str(_field(doc, "l", str)) if traded else None,
        reason=reason if isinstance(reason, str) and reason != "NONE" else None,
    )


def venue_error(provider: str, status: int, content: bytes) -> VenueError:
    """The error for a non-2xx answer: unknown outcome, or a definite refusal."""
    code, message = _error_body(content)
    if status >= 500 or status in (408, 418, 429) or code in UNKNOWN_STATUS_CODES:
        return VenueUnavailableError(provider, message, status=status, code=code)
    if code in UNKNOWN_ORDER_CODES:
        return UnknownOrderError(provider, message, status=status, code=code)
    if code == DUPLICATE_CODE and "duplicate" in message.lower():
        return DuplicateOrderError(provider, message, status=status, code=code)
    return VenueRejectedError(provider, message, status=status, code=code)


def _error_body(content: bytes) -> tuple[int | None, str]:
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None, content[:200].decode(errors="replace") or "no error body"
    if not isinstance(doc, dict):
        return None, str(doc)[:200]
    code = doc.get("code")
    message = doc.get("msg")
    return (
        code if isinstance(code, int) else None,
        message if isinstance(message, str) else str(doc)[:200],
    )
