"""The order gateway: idempotent orders, safe retries, one report per transition.

It owns SubmitOrder, CancelOrder and QueryOrder on the control bus. ``check`` and
``apply`` run inside the control task and never wait: ``apply`` records the order
in the idempotency ledger and hands the venue work to the gateway's own workers
through bounded channels. :meth:`OrderGateway.serve` runs those workers and one
reader per venue execution stream.

Idempotency
    An order is ``(consumer_id, client_order_id)``. A second SubmitOrder with that
    key gets the first one's outcome and creates nothing (the same parameters are
    required; a reused id with different ones is refused). The venue sees one
    *venue client order id* per key, derived from it (``mt-`` + 32 hex digits of
    BLAKE2b), the same on every retry and across restarts.

Retries and reconciliation
    A submit whose outcome is unknown (timeout, 5xx) or that the venue calls a
    duplicate (Binance -2010) is never simply resent. The gateway waits until the
    venue can no longer act on the request it sent (``settle_time``: Binance's
    ``recvWindow``), then queries by the venue client order id: if the venue has
    the order, it is adopted; only if the venue definitely has none (-2013) is it
    submitted again, with the same id. Queries that fail are retried with capped,
    jittered backoff; an order still unknown after ``max_attempts`` is logged,
    counted as unresolved and kept, so its stream updates still apply and a later
    stream reconnection queries it again.

Execution reports
    Every transition of the state machine (``_state``) becomes one ExecReport,
    with ``exec_id = "<venue client order id>:<n>"`` (``n`` = 1, 2, ... per order;
    unique as long as a client_order_id is not reused once its ledger entry has
    expired, 24 hours by default), delivered to the owning consumer only, with the
    SubmitOrder's decision_id and trace_id. Venue updates seen before (same venue
    exec id) or that add nothing (a REST answer repeating a stream event) produce
    no report.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Final

import attrs
import trio

from meltica_trio.bus import CancelOrder, ControlBus, Outcome, QueryOrder, SubmitOrder
from meltica_trio.bus import instrument_problem as _instrument_problem
from meltica_trio.events import ExecReport, OrderState
from meltica_trio.telemetry import log_fields

from ._client import StreamGap, StreamItem, VenueOrder, VenueOrderClient, VenueUpdate
from ._defaults import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    MAX_ATTEMPTS,
    ORDER_QUEUE_CAPACITY,
    ORDER_WORKERS,
    UPDATE_CAPACITY,
)
from ._errors import (
    DuplicateOrderError,
    InvalidTransitionError,
    UnknownOrderError,
    VenueRejectedError,
    VenueUnavailableError,
)
from ._ledger import MemoryLedger, OrderKey, OrderLedger
from ._state import OrderTracker, Transition, format_decimal, parse_decimal

log = logging.getLogger(__name__)

ReportSink = Callable[[str, ExecReport, str | None, str | None], None]
"""``deliver(consumer_id, report, decision_id, trace_id)``: puts an ExecReport in the
owning consumer's lane (CRITICAL); must not block."""

MAX_CLIENT_ORDER_ID: Final = 64
"""Longest ``client_order_id`` accepted, in characters."""


def venue_client_order_id(key: OrderKey) -> str:
    """The id the venue stores for ``key``: ``mt-`` + 32 hex digits (Binance allows 36)."""
    return "mt-" + key.hexdigest()


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How hard the gateway tries one step (place, cancel, reconcile).

    Attributes:
        max_attempts: venue calls per step before giving up.
        backoff_base: seconds before the first retry; doubled each time.
        backoff_cap: longest pause, seconds (each pause is jittered in [0, cap]).
    """

    max_attempts: int = MAX_ATTEMPTS
    backoff_base: float = BACKOFF_BASE
    backoff_cap: float = BACKOFF_CAP


@attrs.frozen(kw_only=True)
class GatewayStatistics:
    """Counters of an order gateway.

    Attributes:
        submitted: new orders accepted (duplicates not included).
        venue_orders: orders the venue is known to hold (one per order at most).
        duplicates_refused: duplicate submits answered from the ledger, no venue call.
        claimed_elsewhere: accepted orders not sent because another gateway sharing
            the ledger had recorded the same key first (it sends them).
        retries: venue calls repeated after a failure (resubmits, re-queries, re-cancels).
        reconciled: orders whose unknown placement was settled as placed, by a query
            or by the execution stream, without sending them again.
        exec_reports: ExecReports delivered.
        invalid_transitions: venue updates the state machine refused (logged).
        rejected: orders ended REJECTED (by the venue or after failed placing).
        unresolved: orders whose placement is still unknown after every attempt.
        duplicate_updates: venue updates that brought nothing new.
        unknown_updates: venue updates for orders this gateway does not track.
        tracked_orders: orders tracked now (live ones, and ended ones until their
            ledger entry expires).
        queued: venue jobs waiting for a worker.
    """

    submitted: int
    venue_orders: int
    duplicates_refused: int
    claimed_elsewhere: int
    retries: int
    reconciled: int
    exec_reports: int
    invalid_transitions: int
    rejected: int
    unresolved: int
    duplicate_updates: int
    unknown_updates: int
    tracked_orders: int
    queued: int


class _Job(enum.Enum):
    PLACE = "place"
    CANCEL = "cancel"
    REFRESH = "refresh"


class _Found(enum.Enum):
    PRESENT = "present"
    ABSENT = "absent"
    UNKNOWN = "unknown"


@attrs.define(eq=False)
class _Order:
    key: OrderKey
    command: SubmitOrder
    venue: VenueOrder
    tracker: OrderTracker
    client: VenueOrderClient
    placed: bool = False
    told: trio.Event = attrs.field(factory=trio.Event)  # set with placed: wakes a reconcile

    @property
    def log_extra(self) -> dict[str, object]:
        """The ids every log line about this order carries (``extra=``)."""
        command = self.command
        return log_fields(
            trace_id=command.trace_id,
            decision_id=command.decision_id,
            consumer=command.consumer_id,
            provider=command.provider,
            instrument=command.instrument,
            client_order_id=command.client_order_id,
        )


def _by_provider(
    clients: Mapping[str, VenueOrderClient] | Iterable[VenueOrderClient],
) -> dict[str, VenueOrderClient]:
    if isinstance(clients, Mapping):
        return dict(clients)
    return {client.provider: client for client in clients}


def _same_order(a: SubmitOrder, b: SubmitOrder) -> bool:
    def price(p: str | None) -> object:
        return None if p is None else parse_decimal(p)

    return (a.provider, a.instrument, a.side) == (b.provider, b.instrument, b.side) and (
        parse_decimal(a.quantity),
        price(a.price),
    ) == (parse_decimal(b.quantity), price(b.price))


@attrs.define(eq=False)
class OrderGateway:
    """The CommandOwner of SubmitOrder, CancelOrder and QueryOrder.

    Args:
        clients: the venue order clients, by provider name (or an iterable of them).
        deliver: puts an ExecReport in its owner's lane (see :data:`ReportSink`).
        ledger: the idempotency ledger (in memory by default).
        workers: worker tasks; one order's jobs always run on the same worker.
        queue_capacity: venue jobs queued across all workers; beyond it commands
            are refused as busy (nothing is recorded).
        update_capacity: venue updates buffered per execution stream.
        retry: attempts and backoff of each step.
    """

    clients: dict[str, VenueOrderClient] = attrs.field(converter=_by_provider)
    deliver: ReportSink
    ledger: OrderLedger = attrs.field(factory=MemoryLedger, kw_only=True)
    workers: int = attrs.field(default=ORDER_WORKERS, kw_only=True)
    queue_capacity: int = attrs.field(default=ORDER_QUEUE_CAPACITY, kw_only=True)
    update_capacity: int = attrs.field(default=UPDATE_CAPACITY, kw_only=True)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy, kw_only=True)
    rng: random.Random = attrs.field(factory=random.Random, kw_only=True, repr=False)
    _orders: dict[OrderKey, _Order] = attrs.field(init=False, factory=dict)
    _by_venue: dict[tuple[str, str], _Order] = attrs.field(init=False, factory=dict)
    _sends: list[trio.MemorySendChannel[tuple[_Job, _Order]]] = attrs.field(init=False)
    _receives: list[trio.MemoryReceiveChannel[tuple[_Job, _Order]]] = attrs.field(init=False)
    _counts: dict[str, int] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.workers < 1 or self.queue_capacity < self.workers:
            raise ValueError("an order gateway needs workers >= 1 and queue_capacity >= workers")
        pairs = [
            trio.open_memory_channel[tuple[_Job, _Order]](self.queue_capacity // self.workers)
            for _ in range(self.workers)
        ]
        self._sends = [send for send, _ in pairs]
        self._receives = [receive for _, receive in pairs]
        names = GatewayStatistics.__attrs_attrs__
        self._counts = {a.name: 0 for a in names if a.name not in ("tracked_orders", "queued")}

    def register(self, bus: ControlBus) -> None:
        """Make this gateway the owner of the three order commands on ``bus``."""
        for command in (SubmitOrder, CancelOrder, QueryOrder):
            bus.register(command, self)

    # -- the control task: check and apply, never waiting ------------------------------

    def check(self, command: object) -> str | None:
        """Why ``command`` is refused, or None. Changes nothing."""
        if isinstance(command, SubmitOrder):
            return self._check_submit(command)
        if not isinstance(command, CancelOrder | QueryOrder):
            return f"the order gateway does not handle {type(command).__name__}"
        order = self._orders.get(OrderKey(command.consumer_id, command.client_order_id))
        if order is None:
            return f"no order {command.client_order_id!r} for consumer {command.consumer_id!r}"
        if isinstance(command, CancelOrder):
            if order.tracker.terminal:
                return f"order {command.client_order_id!r} is already {order.tracker.state}"
            return self._queue_problem(order.key)
        return None

    def _check_submit(self, command: SubmitOrder) -> str | None:
        key = OrderKey(command.consumer_id, command.client_order_id)
        first = self._first_submit(key)
        if first is not None:
            if _same_order(first, command):
                return None  # a duplicate: apply answers with the original outcome
            return f"client_order_id {command.client_order_id!r} was used for another order"
        problem = self._submit_problem(command)
        if problem is not None:
            return problem
        if not self.ledger.has_room():
            return "the idempotency ledger is full; try again when old orders expire"
        return self._queue_problem(key)

    def _first_submit(self, key: OrderKey) -> SubmitOrder | None:
        entry = self.ledger.lookup(key)
        if entry is not None:
            return entry.command
        live = self._orders.get(key)
        # An ended order whose entry expired no longer holds its key.
        return None if live is None or live.tracker.terminal else live.command

    def _submit_problem(self, command: SubmitOrder) -> str | None:
        if command.provider not in self.clients:
            known = ", ".join(sorted(self.clients)) or "none"
            return f"unknown provider {command.provider!r} (known: {known})"
        if not command.client_order_id or len(command.client_order_id) > MAX_CLIENT_ORDER_ID:
            return f"client_order_id must have 1 to {MAX_CLIENT_ORDER_ID} characters"
        problem = _instrument_problem(command.instrument)
        if problem is not None:
            return problem
        for name, text in (("quantity", command.quantity), ("price", command.price)):
            if text is None:
                continue  # no price: a market order
            try:
                value = parse_decimal(text)
            except ValueError as exc:
                return f"{name}: {exc}"
            if not value:
                return f"{name} must be above zero, not {text!r}"
        return None

    def _queue_problem(self, key: OrderKey) -> str | None:
        stats = self._sends[self._shard(key)].statistics()
        if stats.open_receive_channels == 0:
            return "the order gateway is not running"
        if stats.current_buffer_used >= stats.max_buffer_size:
            return "the order gateway is busy; nothing was sent"
        return None

    def _shard(self, key: OrderKey) -> int:
        return hash(key) % self.workers

    def apply(self, command: object) -> Outcome:
        """Carry out a command ``check`` accepted; venue work goes to the workers."""
        if isinstance(command, SubmitOrder):
            return self._apply_submit(command)
        assert isinstance(command, CancelOrder | QueryOrder)
        order = self._orders[OrderKey(command.consumer_id, command.client_order_id)]
        if isinstance(command, CancelOrder):
            self._enqueue(_Job.CANCEL, order)
            return Outcome(True, None, (*self._detail(order), ("cancel", "requested")))
        if not order.tracker.terminal and self._queue_problem(order.key) is None:
            self._enqueue(_Job.REFRESH, order)  # fresh news arrive as ExecReports
        return Outcome(True, None, self._detail(order))

    def _apply_submit(self, command: SubmitOrder) -> Outcome:
        key = OrderKey(command.consumer_id, command.client_order_id)
        self._forget_expired()
        entry = self.ledger.lookup(key)
        live = self._orders.get(key)
        if entry is not None:
            self._counts["duplicates_refused"] += 1
            return entry.outcome
        if live is not None:  # the ledger forgot it, but it is still alive
            self._counts["duplicates_refused"] += 1
            return Outcome(True, None, self._detail(live))
        client = self.clients[command.provider]
        venue = VenueOrder(
            venue_client_order_id=venue_client_order_id(key),
            instrument=command.instrument,
            side=command.side,
            quantity=command.quantity,
            price=command.price,
        )
        tracker = OrderTracker.open(command.client_order_id, command.quantity)
        order = _Order(key, command, venue, tracker, client)
        outcome = Outcome(True, None, self._detail(order))
        self.ledger.record(key, command, outcome)
        self._orders[key] = order
        self._by_venue[(client.provider, venue.venue_client_order_id)] = order
        self._enqueue(_Job.PLACE, order)
        self._counts["submitted"] += 1
        return outcome

    def _enqueue(self, job: _Job, order: _Order) -> None:
        # check() saw room, and nothing else ran in between: this cannot block.
        self._sends[self._shard(order.key)].send_nowait((job, order))

    def _detail(self, order: _Order) -> tuple[tuple[str, str], ...]:
        tracker = order.tracker
        detail = [
            ("client_order_id", order.key.client_order_id),
            ("venue_client_order_id", order.venue.venue_client_order_id),
            ("state", str(tracker.state)),
            ("filled", format_decimal(tracker.filled)),
            ("remaining", format_decimal(tracker.remaining)),
        ]
        if tracker.venue_order_id is not None:
            detail.append(("venue_order_id", tracker.venue_order_id))
        return tuple(detail)

    def _forget_expired(self) -> None:
        """Drop ended orders whose ledger entries expired (live ones stay tracked)."""
        for key in self.ledger.expire():
            order = self._orders.get(key)
            if order is not None and order.tracker.terminal:
                self._forget(order)

    def _forget(self, order: _Order) -> None:
        self._orders.pop(order.key, None)
        self._by_venue.pop((order.client.provider, order.venue.venue_client_order_id), None)

    # -- the gateway's own tasks ------------------------------------------------------

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the workers and every venue's execution-stream reader until cancelled.

        Reports ready once every stream task has started. Run it once: its workers
        own their channels and close them on the way out, after which commands are
        refused ("not running").

        Cancellation:
            Ends every worker and stream. A venue call cut short leaves its order
            as it was (tracked, possibly unresolved); the ledger keeps the key.
        """
        async with trio.open_nursery() as nursery:
            for receive in self._receives:
                nursery.start_soon(self._work, receive)
            for client in self.clients.values():
                send, receive_updates = trio.open_memory_channel[StreamItem](self.update_capacity)
                nursery.start_soon(self._read_updates, client.provider, receive_updates)
                await nursery.start(client.serve_updates, send)
            task_status.started()

    async def _work(self, receive: trio.MemoryReceiveChannel[tuple[_Job, _Order]]) -> None:
        with receive:
            async for job, order in receive:
                if job is _Job.PLACE:
                    await self._place(order)
                elif job is _Job.CANCEL:
                    await self._cancel(order)
                elif not order.tracker.terminal:  # it may have ended while queued
                    await self._refresh(order)

    async def _read_updates(
        self, provider: str, receive: trio.MemoryReceiveChannel[StreamItem]
    ) -> None:
        with receive:
            async for item in receive:
                if isinstance(item, StreamGap):
                    await self._resync(provider, item.reason)
                else:
                    self._on_update(provider, item)

    async def _resync(self, provider: str, reason: str) -> None:
        """Query every live order of ``provider`` the venue has or may have.

        Orders still being placed are included: fills they made before the new stream
        followed the account were told to no one. An order's jobs run in order on its
        worker, so such an order is queried once its placement is over.
        """
        live = [
            o
            for o in self._orders.values()
            if o.client.provider == provider and not o.tracker.terminal
        ]
        if live:
            log.info(
                "%s: %s; reconciling %d live orders",
                provider,
                reason,
                len(live),
                extra=log_fields(provider=provider),
            )
        for order in live:
            await self._sends[self._shard(order.key)].send((_Job.REFRESH, order))

    def _on_update(self, provider: str, update: VenueUpdate) -> None:
        order = self._by_venue.get((provider, update.venue_client_order_id))
        if order is None:
            self._counts["unknown_updates"] += 1
            log.debug(
                "%s: update for an untracked order %s",
                provider,
                update,
                extra=log_fields(provider=provider),
            )
            return
        self._advance(order, update)

    # -- steps ------------------------------------------------------------------------

    async def _place(self, order: _Order) -> None:
        """Submit once; on an unknown outcome reconcile, and resend only if absent."""
        if not await self._claim(order):
            return
        for attempt in range(self.retry.max_attempts):
            if order.placed or order.tracker.terminal:
                return  # the stream or a reconcile got there first
            if attempt:
                self._counts["retries"] += 1
            sent_at = trio.current_time()
            try:
                update = await order.client.submit(order.venue)
            except (VenueUnavailableError, DuplicateOrderError) as exc:
                log.info(
                    "%s: submit of %s uncertain: %s",
                    order.client.provider,
                    order.key,
                    exc,
                    extra=order.log_extra,
                )
            except VenueRejectedError as exc:
                self._reject(order, exc.reason)
                return
            else:
                self._advance(order, update)
                return
            if await self._reconcile(order, sent_at) is not _Found.ABSENT:
                return
        self._reject(order, f"not placed after {self.retry.max_attempts} attempts")

    async def _claim(self, order: _Order) -> bool:
        """Whether the order is this gateway's to send (a shared ledger may say not)."""
        holder = await self.ledger.claim(order.key)
        if holder is None:
            return True
        self._counts["claimed_elsewhere"] += 1
        log.warning(
            "%s: %s is held in the shared ledger by another gateway (command %s); not sent",
            order.client.provider,
            order.key,
            holder.command.command_id,
            extra=order.log_extra,
        )
        self._forget(order)
        return False

    async def _reconcile(self, order: _Order, sent_at: float) -> _Found:
        """Ask the venue whether it has the order, once it can no longer act on ``sent_at``."""
        settled = sent_at + order.client.settle_time
        for attempt in range(self.retry.max_attempts):
            if attempt:
                self._counts["retries"] += 1
            with trio.move_on_at(max(settled, trio.current_time() + self._backoff(attempt))):
                await order.told.wait()  # the stream telling first ends the wait (and the step)
            if order.placed:
                self._counts["reconciled"] += 1
                return _Found.PRESENT
            try:
                update = await order.client.query(order.venue.ref)
            except UnknownOrderError:
                return _Found.ABSENT
            except VenueUnavailableError as exc:
                log.info(
                    "%s: reconcile of %s failed: %s",
                    order.client.provider,
                    order.key,
                    exc,
                    extra=order.log_extra,
                )
                continue
            except VenueRejectedError as exc:
                log.warning(
                    "%s: reconcile of %s refused: %s",
                    order.client.provider,
                    order.key,
                    exc,
                    extra=order.log_extra,
                )
                break
            self._counts["reconciled"] += 1
            self._advance(order, update)
            return _Found.PRESENT
        self._counts["unresolved"] += 1
        log.error(
            "%s: placement of %s is unknown; keeping it",
            order.client.provider,
            order.key,
            extra=order.log_extra,
        )
        return _Found.UNKNOWN

    async def _cancel(self, order: _Order) -> None:
        for attempt in range(self.retry.max_attempts):
            if order.tracker.terminal:
                return
            if attempt:
                self._counts["retries"] += 1
                await trio.sleep(self._backoff(attempt))
            try:
                update = await order.client.cancel(order.venue.ref)
            except UnknownOrderError:
                await self._refresh(order)  # it ended already: learn how
                return
            except VenueUnavailableError as exc:
                log.info(
                    "%s: cancel of %s failed: %s",
                    order.client.provider,
                    order.key,
                    exc,
                    extra=order.log_extra,
                )
                continue
            except VenueRejectedError as exc:
                log.warning(
                    "%s: cancel of %s refused: %s",
                    order.client.provider,
                    order.key,
                    exc,
                    extra=order.log_extra,
                )
                return
            self._advance(order, update)
            return
        log.error(
            "%s: cancel of %s gave up", order.client.provider, order.key, extra=order.log_extra
        )

    async def _refresh(self, order: _Order) -> None:
        for attempt in range(self.retry.max_attempts):
            if attempt:
                self._counts["retries"] += 1
                await trio.sleep(self._backoff(attempt))
            try:
                update = await order.client.query(order.venue.ref)
            except UnknownOrderError as exc:
                log.warning(
                    "%s: %s not found at the venue: %s",
                    order.client.provider,
                    order.key,
                    exc,
                    extra=order.log_extra,
                )
                return
            except VenueUnavailableError:
                continue
            except VenueRejectedError as exc:
                log.warning(
                    "%s: query of %s refused: %s",
                    order.client.provider,
                    order.key,
                    exc,
                    extra=order.log_extra,
                )
                return
            self._advance(order, update)
            return

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.retry.backoff_cap, self.retry.backoff_base * 2**attempt)
        return self.rng.uniform(0, ceiling)

    # -- transitions and reports ---------------------------------------------------------

    def _advance(self, order: _Order, update: VenueUpdate) -> None:
        if update.state is not OrderState.REJECTED and not order.placed:
            order.placed = True
            order.told.set()
            self._counts["venue_orders"] += 1
        try:
            steps = order.tracker.advance(update)
        except InvalidTransitionError as exc:
            self._counts["invalid_transitions"] += 1
            log.warning(
                "%s: %s (update %s)", order.client.provider, exc, update, extra=order.log_extra
            )
            return
        if not steps:
            self._counts["duplicate_updates"] += 1
        for step in steps:
            self._report(order, step)

    def _reject(self, order: _Order, reason: str) -> None:
        if order.tracker.state is not OrderState.NEW:
            return  # the venue spoke meanwhile; its word stands
        self._report(order, order.tracker.transition(OrderState.REJECTED, reason=reason))

    def _report(self, order: _Order, step: Transition) -> None:
        command = order.command
        report = ExecReport(
            exec_id=f"{order.venue.venue_client_order_id}:{step.seq}",
            consumer_id=command.consumer_id,
            client_order_id=command.client_order_id,
            venue_order_id=step.venue_order_id,
            side=command.side,
            price=command.price,
            quantity=command.quantity,
            state=step.state,
            filled=step.filled,
            remaining=step.remaining,
            last_fill_price=step.last_fill_price,
            last_fill_size=step.last_fill_size,
            reason=step.reason,
        )
        self._counts["exec_reports"] += 1
        if step.state is OrderState.REJECTED:
            self._counts["rejected"] += 1
        if log.isEnabledFor(logging.INFO):  # the audit trail of every order, when asked
            log.info(
                "%s: %s %s, filled %s of %s%s",
                command.provider,
                order.key,
                step.state,
                step.filled,
                command.quantity,
                f" ({step.reason})" if step.reason else "",
                extra=order.log_extra,
            )
        self.deliver(command.consumer_id, report, command.decision_id, command.trace_id)
        if order.tracker.terminal and self.ledger.lookup(order.key) is None:
            self._forget(order)

    def order_of(self, consumer_id: str, client_order_id: str) -> SubmitOrder | None:
        """The SubmitOrder behind a tracked or remembered order (provider, instrument...).

        A report's ``deliver`` callback can use it to stamp the envelope's provider
        and instrument: the order is still tracked while its reports are delivered.
        """
        key = OrderKey(consumer_id, client_order_id)
        order = self._orders.get(key)
        if order is not None:
            return order.command
        entry = self.ledger.lookup(key)
        return None if entry is None else entry.command

    def statistics(self) -> GatewayStatistics:
        """A snapshot of the gateway's counters."""
        queued = sum(s.statistics().current_buffer_used for s in self._sends)
        return GatewayStatistics(**self._counts, tracked_orders=len(self._orders), queued=queued)
