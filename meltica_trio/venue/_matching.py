"""A price-time-priority matching engine for one symbol (sans-I/O, exact ``Decimal``).

The engine owns the book of one symbol and nothing else: no clock (every call takes the
wall time in milliseconds), no sockets, no JSON. Each call returns an :class:`Outcome`
that tells the caller everything that changed, in order::

    submit / cancel  ->  Outcome
                           order         the order after the call (a frozen snapshot)
                           reports       execution reports, taker's and makers', in order
                           fills         one per match, each with its trade id
                           changes       book levels touched, each with its update id
                           top_changed   whether best bid or ask (price or size) moved

Invariants, checked by the tests: the book is never crossed after a call; orders at a
price fill in arrival order; ``filled + remaining == quantity`` for every order; a fill
happens at the resting (maker) order's price.

Update ids count level changes: every change of a level's total quantity takes the next
id, so a diff that carries changes ``U..u`` is followed by one starting at ``u + 1``.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Iterator
from decimal import Decimal
from typing import Final

import attrs

from ._orders import (
    OPEN,
    ZERO,
    DuplicateOrderError,
    ExecType,
    ExecutionReport,
    Fill,
    LevelChange,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderView,
    Outcome,
    TimeInForce,
    UnknownOrderError,
)

__all__ = ["CLOSED_HISTORY", "MatchingEngine"]

CLOSED_HISTORY: Final = 100_000
"""Closed orders an engine remembers for queries (a synthetic market closes ~10^5 an hour)."""


@attrs.define(eq=False, kw_only=True)
class _Order:
    order_id: int
    client_order_id: str
    request: OrderRequest
    created_ms: int
    updated_ms: int
    filled: Decimal = ZERO
    quote_filled: Decimal = ZERO
    status: OrderStatus = OrderStatus.NEW
    working: bool = False

    def view(self) -> OrderView:
        r = self.request
        return OrderView(
            order_id=self.order_id,
            client_order_id=self.client_order_id,
            owner=r.owner,
            side=r.side,
            type=r.type,
            time_in_force=r.time_in_force,
            quantity=r.quantity,
            price=r.price,
            filled=self.filled,
            quote_filled=self.quote_filled,
            status=self.status,
            created_ms=self.created_ms,
            updated_ms=self.updated_ms,
            working=self.working,
        )

    @property
    def remaining(self) -> Decimal:
        return self.request.quantity - self.filled


@attrs.define(eq=False)
class _Side:
    """Price levels of one side: ascending prices, a FIFO queue and a total per level."""

    side: OrderSide
    prices: list[Decimal] = attrs.field(factory=list)
    queues: dict[Decimal, deque[_Order]] = attrs.field(factory=dict)
    totals: dict[Decimal, Decimal] = attrs.field(factory=dict)

    def best(self) -> Decimal | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.side is OrderSide.BUY else self.prices[0]

    def levels(self) -> Iterator[tuple[Decimal, Decimal]]:
        """(price, total) from the best price outwards."""
        ordered = reversed(self.prices) if self.side is OrderSide.BUY else iter(self.prices)
        for price in ordered:
            yield price, self.totals[price]

    def add(self, order: _Order, price: Decimal) -> Decimal:
        if price not in self.queues:
            bisect.insort(self.prices, price)
            self.queues[price] = deque()
            self.totals[price] = ZERO
        self.queues[price].append(order)
        self.totals[price] += order.remaining
        return self.totals[price]

    def reduce(self, price: Decimal, quantity: Decimal) -> Decimal:
        """Take ``quantity`` off a level's total; drop the level when empty."""
        total = self.totals[price] - quantity
        self.totals[price] = total
        if not self.queues[price]:
            del self.queues[price], self.totals[price]
            self.prices.pop(bisect.bisect_left(self.prices, price))
        return total


def _crosses(taker: OrderRequest, maker_price: Decimal) -> bool:
    if taker.type is OrderType.MARKET or taker.price is None:
        return True
    if taker.side is OrderSide.BUY:
        return maker_price <= taker.price
    return maker_price >= taker.price


@attrs.define(eq=False)
class _Call:
    """What one engine call collects while it runs."""

    now: int
    reports: list[ExecutionReport] = attrs.field(factory=list)
    fills: list[Fill] = attrs.field(factory=list)
    changes: list[LevelChange] = attrs.field(factory=list)


class MatchingEngine:
    """The order book and matcher of one symbol.

    Args:
        symbol: the venue symbol (``"BTCUSDT"``), for reference only.
        exec_ids: where execution report ids come from; share one iterator between
            engines to make ids unique across a venue.
        closed_history: closed orders kept for lookups; older ones are forgotten.
    """

    def __init__(
        self,
        symbol: str,
        *,
        exec_ids: Iterator[int] | None = None,
        closed_history: int = CLOSED_HISTORY,
    ) -> None:
        self.symbol = symbol
        self._closed: deque[int] = deque()
        self._closed_history = closed_history
        self._exec_ids = exec_ids if exec_ids is not None else itertools.count(1)
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._update_id = 0
        self._sides = {s: _Side(s) for s in OrderSide}
        self._orders: dict[int, _Order] = {}
        self._by_client: dict[tuple[str, str], _Order] = {}

    @property
    def update_id(self) -> int:
        """Id of the last book change (``lastUpdateId`` of a snapshot taken now)."""
        return self._update_id

    def depth(self, limit: int | None = None) -> tuple[list[tuple[Decimal, Decimal]], ...]:
        """(bids, asks) as (price, total quantity), best first, at most ``limit`` each."""
        bids = list(itertools.islice(self._sides[OrderSide.BUY].levels(), limit))
        asks = list(itertools.islice(self._sides[OrderSide.SELL].levels(), limit))
        return bids, asks

    def best(self) -> tuple[tuple[Decimal, Decimal] | None, tuple[Decimal, Decimal] | None]:
        """Best (price, quantity) of bids and asks; ``None`` for an empty side."""
        bids, asks = self.depth(1)
        return (bids[0] if bids else None), (asks[0] if asks else None)

    def open_orders(self, owner: str | None = None) -> list[OrderView]:
        """Open orders (of ``owner``, or of everyone), oldest first."""
        return [
            o.view()
            for o in self._orders.values()
            if o.status in OPEN and (owner is None or o.request.owner == owner)
        ]

    def order(
        self, owner: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> OrderView:
        """Look an order of ``owner`` up by id (preferred) or client order id.

        Raises:
            UnknownOrderError: no such order for this owner.
        """
        return self._find(owner, order_id, client_order_id).view()

    def submit(self, request: OrderRequest, now_ms: int) -> Outcome:
        """Accept a new order, match it and rest (GTC) or expire what is left.

        Raises:
            DuplicateOrderError: the client order id belongs to an open order of the owner.
        """
        key = (request.owner, request.client_order_id or "")
        existing = self._by_client.get(key)
        if existing is not None and existing.status in OPEN:
            raise DuplicateOrderError(key[1])
        top = self.best()
        order_id = next(self._order_ids)
        order = _Order(
            order_id=order_id,
            client_order_id=request.client_order_id or f"sim-{self.symbol.lower()}-{order_id}",
            request=request,
            created_ms=now_ms,
            updated_ms=now_ms,
            working=request.type is OrderType.LIMIT,
        )
        self._orders[order_id] = order
        self._by_client[(request.owner, order.client_order_id)] = order
        call = _Call(now_ms)
        self._report(call, order, ExecType.NEW)
        if request.time_in_force is not TimeInForce.FOK or self._fillable(request):
            self._match(call, order)
        self._settle(call, order)
        return self._outcome(call, order, top)

    def cancel(
        self,
        owner: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        cancel_client_order_id: str = "",
        now_ms: int,
    ) -> Outcome:
        """Cancel an open order of ``owner``.

        Raises:
            UnknownOrderError: no such order, or it is no longer open.
        """
        order = self._find(owner, order_id, client_order_id)
        if order.status not in OPEN:
            raise UnknownOrderError(order.order_id)
        top = self.best()
        call = _Call(now_ms)
        self._unrest(call, order)
        order.status = OrderStatus.CANCELED
        order.updated_ms = now_ms
        self._report(call, order, ExecType.CANCELED, cancel_client_order_id=cancel_client_order_id)
        return self._outcome(call, order, top)

    # -- internals ------------------------------------------------------------------

    def _find(self, owner: str, order_id: int | None, client_order_id: str | None) -> _Order:
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is None or order.request.owner != owner:
                raise UnknownOrderError(order_id)
            return order
        if client_order_id is not None:
            found = self._by_client.get((owner, client_order_id))
            if found is None:
                raise UnknownOrderError(client_order_id)
            return found
        raise UnknownOrderError("")

    def _fillable(self, request: OrderRequest) -> bool:
        need = request.quantity
        for price, total in self._sides[_opposite(request.side)].levels():
            if not _crosses(request, price):
                break
            need -= total
            if need <= 0:
                return True
        return False

    def _match(self, call: _Call, taker: _Order) -> None:
        book = self._sides[_opposite(taker.request.side)]
        while taker.remaining > 0:
            price = book.best()
            if price is None or not _crosses(taker.request, price):
                return
            maker = book.queues[price][0]
            quantity = min(taker.remaining, maker.remaining)
            self._execute(call, taker, maker, price, quantity)
            if maker.remaining == 0:
                book.queues[price].popleft()
                maker.working = False
            self._change(call, book, price, quantity)

    def _execute(
        self, call: _Call, taker: _Order, maker: _Order, price: Decimal, quantity: Decimal
    ) -> None:
        trade_id = next(self._trade_ids)
        fill = Fill(
            trade_id=trade_id,
            price=price,
            quantity=quantity,
            taker_order_id=taker.order_id,
            maker_order_id=maker.order_id,
            taker_side=taker.request.side,
            time_ms=call.now,
        )
        call.fills.append(fill)
        for order, is_maker in ((maker, True), (taker, False)):
            order.filled += quantity
            order.quote_filled += quantity * price
            order.updated_ms = call.now
            order.status = (
                OrderStatus.FILLED if order.remaining == 0 else OrderStatus.PARTIALLY_FILLED
            )
            self._report(call, order, ExecType.TRADE, fill=fill, is_maker=is_maker)

    def _settle(self, call: _Call, order: _Order) -> None:
        """Rest a GTC limit remainder; expire any other remainder."""
        if order.remaining == 0:
            order.working = False
            return
        request = order.request
        if request.type is OrderType.LIMIT and request.time_in_force is TimeInForce.GTC:
            assert request.price is not None
            book = self._sides[request.side]
            total = book.add(order, request.price)
            self._update_id += 1
            call.changes.append(LevelChange(self._update_id, request.side, request.price, total))
            return
        order.working = False
        order.status = OrderStatus.EXPIRED
        self._report(call, order, ExecType.EXPIRED)

    def _unrest(self, call: _Call, order: _Order) -> None:
        price = order.request.price
        if not order.working or price is None:
            return
        book = self._sides[order.request.side]
        book.queues[price].remove(order)
        order.working = False
        self._change(call, book, price, order.remaining)

    def _change(self, call: _Call, book: _Side, price: Decimal, quantity: Decimal) -> None:
        total = book.reduce(price, quantity)
        self._update_id += 1
        call.changes.append(LevelChange(self._update_id, book.side, price, total))

    def _report(
        self,
        call: _Call,
        order: _Order,
        exec_type: ExecType,
        *,
        fill: Fill | None = None,
        is_maker: bool = False,
        cancel_client_order_id: str = "",
    ) -> None:
        report = ExecutionReport(
            exec_id=next(self._exec_ids),
            order=order.view(),
            exec_type=exec_type,
            last_quantity=fill.quantity if fill else ZERO,
            last_price=fill.price if fill else ZERO,
            trade_id=fill.trade_id if fill else -1,
            is_maker=is_maker,
            cancel_client_order_id=cancel_client_order_id,
            time_ms=call.now,
        )
        call.reports.append(report)

    def _outcome(
        self,
        call: _Call,
        order: _Order,
        top: tuple[tuple[Decimal, Decimal] | None, tuple[Decimal, Decimal] | None],
    ) -> Outcome:
        if order.status not in OPEN:
            self._forget_beyond_history(order.order_id)
        for fill in call.fills:
            maker = self._orders[fill.maker_order_id]
            if maker.status not in OPEN:
                self._forget_beyond_history(maker.order_id)
        return Outcome(
            order=order.view(),
            reports=tuple(call.reports),
            fills=tuple(call.fills),
            changes=tuple(call.changes),
            top_changed=self.best() != top,
        )

    def _forget_beyond_history(self, order_id: int) -> None:
        self._closed.append(order_id)
        while len(self._closed) > self._closed_history:
            old = self._orders.pop(self._closed.popleft())
            key = (old.request.owner, old.client_order_id)
            if self._by_client.get(key) is old:
                del self._by_client[key]


def _opposite(side: OrderSide) -> OrderSide:
    return OrderSide.SELL if side is OrderSide.BUY else OrderSide.BUY
