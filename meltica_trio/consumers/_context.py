"""What a consumer function gets besides its event: identity, trading switch, orders."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import attrs
import trio

from meltica_trio.bus import CancelOrder, ControlBus, QueryOrder, SubmitOrder
from meltica_trio.bus._commands import COMMAND_NAMES, Command
from meltica_trio.events import ControlAck, ControlResult, Side

Deliver = Callable[[str, ControlAck | ControlResult], None]


@attrs.define(eq=False)
class ConsumerContext:
    """Handed to every call of a consumer function, the same object each time.

    The trading switch is local to the consumer and fails closed: it is off until a
    ``SetTradingSwitch`` command turns it on. While it is off, :meth:`submit_order`
    never reaches the order gateway; the refusal arrives as a ControlResult in the
    consumer's own lane, like any other answer. Cancels and queries are always
    allowed: they reduce risk or only look.

    Attributes:
        consumer_id: the subscriber's id.
        trading_enabled: the trading switch (read-only: a consumer cannot turn its
            own switch on; the ``SetTradingSwitch`` command changes it).
        orders_refused_locally: orders the switch stopped before they left the runtime.
    """

    consumer_id: str
    _control: ControlBus | None = attrs.field(default=None, kw_only=True)
    _deliver: Deliver | None = attrs.field(default=None, kw_only=True)
    _trading_enabled: bool = attrs.field(default=False, kw_only=True)
    orders_refused_locally: int = attrs.field(default=0, kw_only=True)

    @property
    def trading_enabled(self) -> bool:
        """The trading switch; off (the default) refuses every ``submit_order``."""
        return self._trading_enabled

    def _switch_trading(self, enabled: bool) -> None:
        """Set the switch (for the ``SetTradingSwitch`` command's owner only)."""
        self._trading_enabled = enabled

    def submit_order(
        self,
        *,
        client_order_id: str,
        provider: str,
        instrument: str,
        side: Side | str,
        quantity: str,
        price: str | None = None,
        decision_id: str | None = None,
        trace_id: str | None = None,
    ) -> SubmitOrder:
        """Send an order to the gateway without waiting; answers arrive in the lane.

        ``decision_id`` (minted when not given) ties the order, its acknowledgement
        and every execution report to this decision; ``trace_id`` defaults to it.

        Returns:
            The command sent (its ``command_id`` is repeated by the answers).
        """
        decision_id = decision_id or uuid.uuid4().hex
        command = SubmitOrder(
            consumer_id=self.consumer_id,
            client_order_id=client_order_id,
            provider=provider,
            instrument=instrument,
            side=side,
            quantity=quantity,
            price=price,
            decision_id=decision_id,
            trace_id=trace_id or decision_id,
        )
        if not self._trading_enabled:
            self.orders_refused_locally += 1
            self._refuse(command, f"trading switch is off for consumer {self.consumer_id!r}")
        else:
            self._send(command)
        return command

    def cancel_order(self, client_order_id: str) -> CancelOrder:
        """Ask the gateway to cancel an order (allowed whatever the switch says)."""
        command = CancelOrder(consumer_id=self.consumer_id, client_order_id=client_order_id)
        self._send(command)
        return command

    def query_order(self, client_order_id: str) -> QueryOrder:
        """Ask the gateway for an order's state; the answer arrives in the lane."""
        command = QueryOrder(consumer_id=self.consumer_id, client_order_id=client_order_id)
        self._send(command)
        return command

    def _send(self, command: Command) -> None:
        if self._control is None:
            self._refuse(command, "this consumer is not attached to a control bus")
            return
        try:
            self._control.request_nowait(command)
        except trio.WouldBlock:
            self._refuse(command, "the control bus is full; nothing was sent")
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._refuse(command, "the pipeline is closed; nothing was sent")

    def _refuse(self, command: Command, reason: str) -> None:
        """Answer ``command`` in this consumer's lane without it leaving the runtime."""
        if self._deliver is None:
            return
        name = COMMAND_NAMES[type(command)]
        command_id = command.command_id
        version = self._control.routing_version() if self._control is not None else 0
        ack = ControlAck(
            command_id=command_id,
            command=name,
            accepted=False,
            reason=reason,
            routing_version=version,
        )
        self._deliver(self.consumer_id, ack)
        result = ControlResult(command_id=command_id, command=name, ok=False, reason=reason)
        self._deliver(self.consumer_id, result)
