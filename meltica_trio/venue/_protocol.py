"""The Binance spot wire format the simulated venue speaks (sync, no I/O).

Errors are Binance's JSON ``{"code": -1022, "msg": "..."}`` with the HTTP status
Binance uses; decimals are strings with eight places (``"4.00000200"``); times are
milliseconds. Shapes follow the Binance spot REST, WebSocket-stream and user-data-stream
documentation::

    depthUpdate      e, E, s, U, u, b, a
    aggTrade         e, E, s, a, p, q, f, l, T, m, M
    bookTicker       u, s, b, B, a, A
    executionReport  e, E, s, c, S, o, f, q, p, P, F, g, C, x, X, r, i, l, z, L, n, N,
                     T, t, I, w, m, M, O, Z, Y, Q

``I`` ("ignore" in Binance's documentation) carries the venue's execution id, unique per
report across the venue: clients deduplicate execution reports on it.

Signing (``SIGNED`` endpoints): ``signature`` is the hex HMAC-SHA256, keyed by the API
secret, of ``totalParams``: the query string concatenated with the request body (no
``&`` between them), without the ``signature`` parameter itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlencode

from meltica_trio._errors import MelticaError

from ._orders import ExecutionReport, Fill, OrderView, Outcome

__all__ = [
    "ApiError",
    "agg_trade",
    "book_ticker",
    "depth_update",
    "execution_report",
    "fmt",
    "order_ack",
    "order_full",
    "order_query",
    "sign",
    "signed_query",
    "total_params",
]

JsonObject = dict[str, Any]

DECIMAL_PLACES: Final = Decimal("0.00000001")
"""Binance prints prices and quantities with eight decimal places."""

_ZERO: Final = f"{Decimal(0).quantize(DECIMAL_PLACES):f}"


class ApiError(MelticaError):
    """A request the venue refuses, carried back as Binance's error JSON.

    Attributes:
        status: the HTTP status (400 for a bad request, 401 for a bad key...).
        code: Binance's error code (``-1022``).
        msg: Binance's message for it.
    """

    def __init__(self, status: int, code: int, msg: str) -> None:
        self.status = status
        self.code = code
        self.msg = msg
        super().__init__(f"{code}: {msg}")

    def body(self) -> JsonObject:
        """The JSON body Binance sends for this error."""
        return {"code": self.code, "msg": self.msg}

    @classmethod
    def mandatory(cls, name: str) -> ApiError:
        """-1102: a mandatory parameter is missing or malformed."""
        return cls(
            400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )

    @classmethod
    def illegal_chars(cls, name: str) -> ApiError:
        """-1100: a decimal parameter that is not a plain non-negative number."""
        return cls(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; "
            "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )


BAD_SIGNATURE: Final = ApiError(400, -1022, "Signature for this request is not valid.")
STALE_TIMESTAMP: Final = ApiError(
    400, -1021, "Timestamp for this request is outside of the recvWindow."
)
FUTURE_TIMESTAMP: Final = ApiError(
    400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
)
BAD_RECV_WINDOW: Final = ApiError(400, -1131, "recvWindow must be less than 60000")
BAD_KEY_FORMAT: Final = ApiError(401, -2014, "API-key format invalid.")
REJECTED_KEY: Final = ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
BAD_SYMBOL: Final = ApiError(400, -1121, "Invalid symbol.")
INVALID_SIDE: Final = ApiError(400, -1117, "Invalid side.")
INVALID_TYPE: Final = ApiError(400, -1116, "Invalid orderType.")
INVALID_TIF: Final = ApiError(400, -1115, "Invalid timeInForce.")
DUPLICATE_ORDER: Final = ApiError(400, -2010, "Duplicate order sent.")
NO_SUCH_ORDER: Final = ApiError(400, -2013, "Order does not exist.")
UNKNOWN_ORDER_CANCEL: Final = ApiError(400, -2011, "Unknown order sent.")
NO_LISTEN_KEY: Final = ApiError(400, -1125, "This listenKey does not exist.")
INTERNAL: Final = ApiError(
    500, -1001, "Internal error; unable to process your request. Please try again."
)
PRICE_FILTER: Final = ApiError(400, -1013, "Filter failure: PRICE_FILTER")
LOT_SIZE: Final = ApiError(400, -1013, "Filter failure: LOT_SIZE")
NOT_FOUND: Final = ApiError(404, -1000, "An unknown error occurred while processing the request.")


def fmt(value: Decimal | None) -> str:
    """A decimal as Binance prints it (``Decimal("0.1")`` -> ``"0.10000000"``)."""
    if not value:
        return _ZERO  # most fields of an execution report are zero
    return f"{value.quantize(DECIMAL_PLACES):f}"


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA256 of ``payload`` keyed by ``secret`` (what clients send)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_query(secret: str, params: Mapping[str, object]) -> str:
    """``params`` url-encoded with their ``signature`` appended (a client's side of it)."""
    query = urlencode(params)
    return f"{query}&signature={sign(secret, query)}"


def total_params(query: str, body: str) -> tuple[str, str | None]:
    """Split a request into (``totalParams`` without the signature, the signature).

    Binance concatenates the raw query string and the raw body; the ``signature``
    parameter may sit in either and is left out of what is signed.
    """
    signature: str | None = None
    parts: list[str] = []
    for raw in (query, body):
        kept = []
        for item in raw.split("&") if raw else ():
            if item.startswith("signature="):
                signature = item.removeprefix("signature=")
            else:
                kept.append(item)
        parts.append("&".join(kept))
    return "".join(parts), signature


def _levels(levels: Iterable[tuple[Decimal, Decimal]]) -> list[list[str]]:
    return [[fmt(price), fmt(quantity)] for price, quantity in levels]


def depth_update(
    symbol: str,
    event_ms: int,
    first: int,
    last: int,
    bids: Iterable[tuple[Decimal, Decimal]],
    asks: Iterable[tuple[Decimal, Decimal]],
) -> JsonObject:
    """A ``depthUpdate`` event carrying update ids ``first..last``."""
    return {
        "e": "depthUpdate",
        "E": event_ms,
        "s": symbol,
        "U": first,
        "u": last,
        "b": _levels(bids),
        "a": _levels(asks),
    }


def agg_trade(symbol: str, event_ms: int, agg_id: int, fills: list[Fill]) -> JsonObject:
    """An ``aggTrade`` event: fills of one taker order at one price."""
    first, last = fills[0], fills[-1]
    return {
        "e": "aggTrade",
        "E": event_ms,
        "s": symbol,
        "a": agg_id,
        "p": fmt(first.price),
        "q": fmt(sum((f.quantity for f in fills), Decimal(0))),
        "f": first.trade_id,
        "l": last.trade_id,
        "T": last.time_ms,
        # The buyer is the maker when the taker sold.
        "m": first.taker_side.value == "SELL",
        "M": True,
    }


def book_ticker(
    symbol: str,
    update_id: int,
    bid: tuple[Decimal, Decimal] | None,
    ask: tuple[Decimal, Decimal] | None,
) -> JsonObject:
    """A ``bookTicker`` event (an empty side prints as zero price and size)."""
    zero = (Decimal(0), Decimal(0))
    (bp, bq), (ap, aq) = bid or zero, ask or zero
    return {"u": update_id, "s": symbol, "b": fmt(bp), "B": fmt(bq), "a": fmt(ap), "A": fmt(aq)}


def execution_report(symbol: str, event_ms: int, report: ExecutionReport) -> JsonObject:
    """An ``executionReport`` user-data event for one :class:`ExecutionReport`."""
    order = report.order
    canceled = bool(report.cancel_client_order_id)
    return {
        "e": "executionReport",
        "E": event_ms,
        "s": symbol,
        "c": report.cancel_client_order_id if canceled else order.client_order_id,
        "S": order.side.value,
        "o": order.type.value,
        "f": order.time_in_force.value,
        "q": fmt(order.quantity),
        "p": fmt(order.price),
        "P": fmt(None),
        "F": fmt(None),
        "g": -1,
        "C": order.client_order_id if canceled else "",
        "x": report.exec_type.value,
        "X": order.status.value,
        "r": "NONE",
        "i": order.order_id,
        "l": fmt(report.last_quantity),
        "z": fmt(order.filled),
        "L": fmt(report.last_price),
        "n": "0",
        "N": None,
        "T": report.time_ms,
        "t": report.trade_id,
        "I": report.exec_id,
        "w": order.working,
        "m": report.is_maker,
        "M": False,
        "O": order.created_ms,
        "Z": fmt(order.quote_filled),
        "Y": fmt(report.last_quantity * report.last_price),
        "Q": fmt(None),
    }


def order_ack(symbol: str, order: OrderView) -> JsonObject:
    """The ``ACK`` response to a new order."""
    return {
        "symbol": symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": order.updated_ms,
    }


def _order_fields(order: OrderView) -> JsonObject:
    return {
        "price": fmt(order.price),
        "origQty": fmt(order.quantity),
        "executedQty": fmt(order.filled),
        "cummulativeQuoteQty": fmt(order.quote_filled),
        "status": order.status.value,
        "timeInForce": order.time_in_force.value,
        "type": order.type.value,
        "side": order.side.value,
    }


def order_full(symbol: str, outcome: Outcome, *, with_fills: bool = True) -> JsonObject:
    """The ``RESULT`` (``with_fills=False``) or ``FULL`` response to a new order."""
    body = order_ack(symbol, outcome.order) | _order_fields(outcome.order)
    if with_fills:
        body["fills"] = [
            {
                "price": fmt(fill.price),
                "qty": fmt(fill.quantity),
                "commission": fmt(None),
                "commissionAsset": "BNB",
                "tradeId": fill.trade_id,
            }
            for fill in outcome.fills
        ]
    return body


def order_query(symbol: str, order: OrderView) -> JsonObject:
    """The response to ``GET /api/v3/order`` (and an entry of ``openOrders``)."""
    body: JsonObject = {
        "symbol": symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
    }
    return (
        body
        | _order_fields(order)
        | {
            "stopPrice": fmt(None),
            "icebergQty": fmt(None),
            "time": order.created_ms,
            "updateTime": order.updated_ms,
            "isWorking": order.working,
            "origQuoteOrderQty": fmt(None),
        }
    )


def order_canceled(symbol: str, order: OrderView, cancel_client_order_id: str) -> JsonObject:
    """The response to ``DELETE /api/v3/order``."""
    body: JsonObject = {
        "symbol": symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_order_id,
    }
    return body | _order_fields(order)
