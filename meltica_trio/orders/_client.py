"""What the gateway needs from a venue: the ``VenueOrderClient`` protocol and its values.

A client speaks one venue's order API and nothing else: it places, cancels and
queries orders by the gateway's *venue client order id* and turns the venue's
answers and its execution stream into canonical :class:`VenueUpdate` values. It
holds no order state and never retries; retrying safely (reconcile before resend)
is the gateway's job, because only the gateway knows what it already asked for.

Errors a client raises (from :mod:`meltica_trio.orders._errors`)::

    VenueUnavailableError   timeout, connection error, 5xx: the outcome is unknown
    UnknownOrderError       the venue has no such order (query or cancel)
    DuplicateOrderError     the venue already has an order with that id (submit)
    VenueRejectedError      any other definite refusal
"""

from __future__ import annotations

from typing import Protocol, TypeAlias

import attrs
import trio

from meltica_trio.events import DecimalText, OrderState, Side


@attrs.frozen(kw_only=True)
class VenueOrder:
    """A new order as the venue sees it.

    Attributes:
        venue_client_order_id: the id the venue stores (derived from the gateway's
            ``(consumer_id, client_order_id)``, the same on every retry).
        instrument: canonical ``BASE-QUOTE``.
        side: buy or sell.
        quantity: exact decimal text.
        price: exact decimal text for a limit order; ``None`` for a market order.
    """

    venue_client_order_id: str
    instrument: str
    side: Side
    quantity: DecimalText
    price: DecimalText | None = None

    @property
    def ref(self) -> OrderRef:
        """How to name this order in a cancel or a query."""
        return OrderRef(
            venue_client_order_id=self.venue_client_order_id, instrument=self.instrument
        )


@attrs.frozen(kw_only=True)
class OrderRef:
    """Names an existing order for a cancel or a query."""

    venue_client_order_id: str
    instrument: str


@attrs.frozen(kw_only=True)
class VenueUpdate:
    """The venue's view of one order after one event, in canonical terms.

    Attributes:
        venue_client_order_id: which order.
        exec_id: unique per venue event; the same event seen twice (a replayed frame,
            a REST answer repeating a stream event) has the same id.
        state: the order's state at the venue after the event (never ``NEW``: an order
            the venue knows is at least acknowledged).
        filled: cumulative filled quantity (exact decimal text).
        venue_order_id: the venue's own id, when known.
        last_fill_price: price of the event's fill, if it was a fill and the venue said.
        last_fill_size: size of the event's fill, if it was a fill.
        reason: the venue's reason for a rejection or expiry.
    """

    venue_client_order_id: str
    exec_id: str
    state: OrderState
    filled: DecimalText
    venue_order_id: str | None = None
    last_fill_price: DecimalText | None = None
    last_fill_size: DecimalText | None = None
    reason: str | None = None


@attrs.frozen
class StreamGap:
    """The execution stream (re)connected: updates may have been missed before it.

    The gateway answers it by querying every live order of ``provider``. It is a
    domain notice, not an end-of-stream marker: the stream goes on after it.
    """

    provider: str
    reason: str


StreamItem: TypeAlias = VenueUpdate | StreamGap
"""What a client's execution stream carries."""


class VenueOrderClient(Protocol):
    """One venue's order API, as the order gateway uses it."""

    @property
    def provider(self) -> str:
        """The venue connection's name, as in ``SubmitOrder.provider``."""

    @property
    def settle_time(self) -> float:
        """Seconds after sending within which the venue may still act on a request.

        A query that finds no order proves the order absent only once this much time
        has passed since the last submit was sent (Binance: ``recvWindow``).
        """

    async def submit(self, order: VenueOrder) -> VenueUpdate:
        """Place ``order``; returns the venue's view of it right after.

        That view may be the acknowledgement alone (``ACK``, nothing filled) when
        the venue reports executions on the stream only (Binance with ``ACK``
        answers): one report per execution, with its own price and size.

        Raises:
            VenueUnavailableError: the outcome is unknown.
            DuplicateOrderError: the venue already has an order with this id.
            VenueRejectedError: the venue refused the order.
        """

    async def cancel(self, ref: OrderRef) -> VenueUpdate:
        """Cancel the order; returns its final view.

        Raises:
            VenueUnavailableError: the outcome is unknown.
            UnknownOrderError: no such open order (it may have ended already).
            VenueRejectedError: the venue refused the cancel.
        """

    async def query(self, ref: OrderRef) -> VenueUpdate:
        """The venue's current view of the order.

        Raises:
            VenueUnavailableError: no answer.
            UnknownOrderError: the venue has no such order.
        """

    async def serve_updates(
        self,
        send: trio.MemorySendChannel[StreamItem],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Forward the venue's execution updates into ``send`` until cancelled.

        The task owns ``send`` and closes it when it ends. It reconnects on its own
        and sends a :class:`StreamGap` after every (re)connection.

        Cancellation:
            Safe at any point; an update not yet forwarded is lost, which the
            StreamGap sent on the next connection makes up for.
        """
