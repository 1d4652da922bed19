"""An in-memory VenueOrderClient with injectable faults, and a recording report sink."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import attrs
import trio

from meltica_trio.events import ExecReport, OrderState
from meltica_trio.orders import (
    TERMINAL,
    DuplicateOrderError,
    OrderRef,
    StreamGap,
    StreamItem,
    UnknownOrderError,
    VenueOrder,
    VenueRejectedError,
    VenueUnavailableError,
    VenueUpdate,
)

_STATUS = {
    OrderState.ACK: "NEW",
    OrderState.PARTIAL: "PARTIALLY_FILLED",
    OrderState.FILLED: "FILLED",
    OrderState.CANCELLED: "CANCELED",
}


@attrs.define(eq=False)
class FakeOrder:
    order: VenueOrder
    venue_order_id: str
    state: OrderState = OrderState.ACK
    filled: Decimal = Decimal(0)
    events: list[VenueUpdate] = attrs.field(factory=list)


@attrs.define(eq=False)
class FakeVenue:
    """A venue in memory. Probabilities are per call; ``rng`` is seeded.

    Attributes:
        p_lost: a submit times out before reaching the venue (nothing placed).
        p_unknown: a submit places the order, then answers a timeout or a 503.
        p_query_fail: a query times out.
        p_cancel_unknown: a cancel is carried out, then answers a timeout.
        p_dup: a stream update is sent twice.
        p_replay: an order's first stream update is sent again after its last.
        auto_fill: orders fill at once in 1-3 trades; otherwise they rest.
        stream: send stream updates at all (False: only REST tells).
        reject: a reason to refuse every submit with.
        lose_submits: the next this many submits time out before reaching the venue.
    """

    provider: str = "fake"
    settle_time: float = 5.0
    seed: int = 0
    p_lost: float = 0.0
    p_unknown: float = 0.0
    p_query_fail: float = 0.0
    p_cancel_unknown: float = 0.0
    p_dup: float = 0.0
    p_replay: float = 0.0
    auto_fill: bool = True
    stream: bool = True
    reject: str | None = None
    lose_submits: int = 0
    orders: dict[str, FakeOrder] = attrs.field(factory=dict)
    created: Counter[str] = attrs.field(factory=Counter)
    submits: Counter[str] = attrs.field(factory=Counter)
    calls: list[tuple[str, str, float]] = attrs.field(factory=list)
    duplicate_submits: int = 0
    _rng: random.Random = attrs.field(init=False)
    _ids: int = 0
    _send: trio.MemorySendChannel[StreamItem] = attrs.field(init=False)
    _receive: trio.MemoryReceiveChannel[StreamItem] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._send, self._receive = trio.open_memory_channel[StreamItem](10**7)

    # -- the client protocol -----------------------------------------------------------

    async def submit(self, order: VenueOrder) -> VenueUpdate:
        await trio.lowlevel.checkpoint()
        vcoid = order.venue_client_order_id
        self.calls.append(("submit", vcoid, trio.current_time()))
        self.submits[vcoid] += 1
        roll = self._rng.random()
        if self.lose_submits > 0 or roll < self.p_lost:
            self.lose_submits = max(0, self.lose_submits - 1)
            raise VenueUnavailableError(self.provider, "POST timed out")
        if self.reject is not None:
            raise VenueRejectedError(self.provider, self.reject, status=400, code=-2010)
        if vcoid in self.orders:
            self.duplicate_submits += 1
            raise DuplicateOrderError(self.provider, "Duplicate order sent.", code=-2010)
        placed = self.place(order)
        answer = self.snapshot(placed, first=True)
        if roll < self.p_lost + self.p_unknown:
            raise VenueUnavailableError(self.provider, "Service Unavailable", status=503)
        return answer

    async def cancel(self, ref: OrderRef) -> VenueUpdate:
        await trio.lowlevel.checkpoint()
        self.calls.append(("cancel", ref.venue_client_order_id, trio.current_time()))
        placed = self.orders.get(ref.venue_client_order_id)
        if placed is None or placed.state in TERMINAL:
            raise UnknownOrderError(self.provider, "Unknown order sent.", code=-2011)
        placed.state = OrderState.CANCELLED
        self._emit(placed, "CANCELED")
        if self._rng.random() < self.p_cancel_unknown:
            raise VenueUnavailableError(self.provider, "DELETE timed out")
        return self.snapshot(placed)

    async def query(self, ref: OrderRef) -> VenueUpdate:
        await trio.lowlevel.checkpoint()
        self.calls.append(("query", ref.venue_client_order_id, trio.current_time()))
        if self._rng.random() < self.p_query_fail:
            raise VenueUnavailableError(self.provider, "GET timed out")
        placed = self.orders.get(ref.venue_client_order_id)
        if placed is None:
            raise UnknownOrderError(self.provider, "Order does not exist.", code=-2013)
        return self.snapshot(placed)

    async def serve_updates(
        self,
        send: trio.MemorySendChannel[StreamItem],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with send:
            task_status.started()
            await send.send(StreamGap(self.provider, "connected"))
            async for item in self._receive:
                await send.send(item)

    # -- the venue's side ------------------------------------------------------------

    def place(self, order: VenueOrder) -> FakeOrder:
        """Put ``order`` on the venue (also used to pre-seed orders a test expects)."""
        self._ids += 1
        placed = FakeOrder(order, str(self._ids))
        self.orders[order.venue_client_order_id] = placed
        self.created[order.venue_client_order_id] += 1
        self._emit(placed, "NEW")
        if self.auto_fill:
            self._fill_all(placed)
        if placed.events and self._rng.random() < self.p_replay:
            self._push(placed.events[0])
        return placed

    def _fill_all(self, placed: FakeOrder) -> None:
        quantity = Decimal(placed.order.quantity)
        parts = self._rng.randint(1, 3)
        for i in range(parts):
            share = (quantity / (parts + 1)).quantize(Decimal("0.00000001"))
            size = quantity - placed.filled if i == parts - 1 else share
            self.trade(placed, size)

    def trade(self, placed: FakeOrder, size: Decimal, *, emit: bool = True) -> None:
        placed.filled += size
        quantity = Decimal(placed.order.quantity)
        placed.state = OrderState.FILLED if placed.filled == quantity else OrderState.PARTIAL
        if emit:
            self._emit(placed, "TRADE", last=(placed.order.price or "100", format(size, "f")))

    def snapshot(self, placed: FakeOrder, *, first: bool = False) -> VenueUpdate:
        filled = "0" if first else format(placed.filled, "f")
        state = OrderState.ACK if first else placed.state
        return VenueUpdate(
            venue_client_order_id=placed.order.venue_client_order_id,
            exec_id=f"{placed.venue_order_id}:rest:{_STATUS[state]}:{filled}",
            state=state,
            filled=filled,
            venue_order_id=placed.venue_order_id,
        )

    def _emit(
        self, placed: FakeOrder, execution: str, last: tuple[str, str] | None = None
    ) -> None:
        update = VenueUpdate(
            venue_client_order_id=placed.order.venue_client_order_id,
            exec_id=f"{placed.venue_order_id}:{execution}:{len(placed.events)}",
            state=placed.state,
            filled=format(placed.filled, "f"),
            venue_order_id=placed.venue_order_id,
            last_fill_price=last[0] if last else None,
            last_fill_size=last[1] if last else None,
        )
        placed.events.append(update)
        self._push(update)
        if self._rng.random() < self.p_dup:
            self._push(update)

    def _push(self, item: StreamItem) -> None:
        if self.stream or isinstance(item, StreamGap):
            self._send.send_nowait(item)

    def push(self, item: StreamItem) -> None:
        """Send anything down the stream (a test's injected update or gap)."""
        self._send.send_nowait(item)


@attrs.define(eq=False)
class Sink:
    """Records every delivered report; ``done`` is set after ``expected`` terminal ones."""

    expected: int = 1
    reports: list[tuple[str, ExecReport, str | None, str | None]] = attrs.field(factory=list)
    terminal: int = 0
    done: trio.Event = attrs.field(factory=trio.Event)
    _changed: trio.Event = attrs.field(factory=trio.Event)

    def __call__(
        self, consumer_id: str, report: ExecReport, decision_id: str | None, trace_id: str | None
    ) -> None:
        self.reports.append((consumer_id, report, decision_id, trace_id))
        self._changed.set()
        if report.state in TERMINAL:
            self.terminal += 1
            if self.terminal >= self.expected:
                self.done.set()

    async def wait_for(self, condition: Callable[[], object]) -> None:
        """Wait until ``condition()`` holds, re-checking after every report."""
        while not condition():
            self._changed = trio.Event()
            await self._changed.wait()

    def states(self, client_order_id: str, consumer_id: str | None = None) -> list[OrderState]:
        return [
            r.state
            for c, r, _, _ in self.reports
            if r.client_order_id == client_order_id and consumer_id in (None, c)
        ]


async def until(condition: Callable[[], object], *, step: float = 0.5) -> None:
    """Wait until ``condition()`` holds, polling on the (mock, autojumping) trio clock."""
    while not condition():  # noqa: ASYNC110 - many conditions, no event to hang them on
        await trio.sleep(step)
