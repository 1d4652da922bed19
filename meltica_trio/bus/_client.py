"""``pipe.control``: one awaitable method per command, for Python callers."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from meltica_trio.events import Kind, Side

from ._commands import (
    CancelOrder,
    Command,
    ConfigureMerge,
    FlipRouting,
    QueryOrder,
    SetTradingSwitch,
    StageRouting,
    SubmitOrder,
    Subscribe,
    SubscribeMerged,
    Unsubscribe,
)
from ._control import ControlBus, ControlReply

OPERATOR = "operator"
"""The requester named by commands an operator (not a consumer) sends."""


@attrs.define(eq=False)
class ControlClient:
    """Sends commands through the Control Bus and returns both answers.

    Nothing here raises for a refused command: the reply's ``ack.accepted`` and
    ``result.ok`` say what happened and ``reason`` says why.
    """

    bus: ControlBus

    async def send(self, command: Command) -> ControlReply:
        """Send any command and wait for its ControlAck and ControlResult."""
        return await self.bus.request(command)

    async def subscribe(
        self,
        consumer_id: str,
        *,
        instruments: Iterable[str] | str | None = None,
        kinds: Iterable[Kind | str] | Kind | None = None,
        providers: Iterable[str] | str | None = None,
    ) -> ControlReply:
        """Replace a registered consumer's filters (``None`` = every value)."""
        command = Subscribe(
            consumer_id=consumer_id, instruments=instruments, kinds=kinds, providers=providers
        )
        return await self.send(command)

    async def unsubscribe(self, consumer_id: str) -> ControlReply:
        """Route nothing more to the consumer."""
        return await self.send(Unsubscribe(consumer_id=consumer_id))

    async def subscribe_merged(
        self, consumer_id: str, instrument: str, *, rule: str | None = None
    ) -> ControlReply:
        """Add the merged cross-venue view of ``instrument`` to the consumer."""
        command = SubscribeMerged(consumer_id=consumer_id, instrument=instrument, rule=rule)
        return await self.send(command)

    async def stage_routing(
        self, *changes: Subscribe | Unsubscribe, requester: str = OPERATOR
    ) -> ControlReply:
        """Stage subscription changes as the next routing version."""
        return await self.send(StageRouting(consumer_id=requester, changes=changes))

    async def flip_routing(self, *, requester: str = OPERATOR) -> ControlReply:
        """Make the staged routing version current, atomically."""
        return await self.send(FlipRouting(consumer_id=requester))

    async def set_trading_switch(self, consumer_id: str, enabled: bool) -> ControlReply:
        """Turn a consumer's trading on or off."""
        return await self.send(SetTradingSwitch(consumer_id=consumer_id, enabled=enabled))

    async def configure_merge(
        self,
        *,
        name: str,
        instrument: str,
        kind: Kind | str,
        providers: Iterable[str],
        window: float,
        max_count: int,
        requester: str = OPERATOR,
    ) -> ControlReply:
        """Add or replace a merge rule of the orchestrator."""
        command = ConfigureMerge(
            consumer_id=requester,
            name=name,
            instrument=instrument,
            kind=kind,
            providers=frozenset(providers),
            window=window,
            max_count=max_count,
        )
        return await self.send(command)

    async def submit_order(
        self,
        consumer_id: str,
        *,
        client_order_id: str,
        provider: str,
        instrument: str,
        side: Side | str,
        quantity: str,
        price: str | None = None,
        decision_id: str | None = None,
    ) -> ControlReply:
        """Submit an order on a consumer's behalf (operators; consumers use their ctx)."""
        command = SubmitOrder(
            consumer_id=consumer_id,
            client_order_id=client_order_id,
            provider=provider,
            instrument=instrument,
            side=side,
            quantity=quantity,
            price=price,
            decision_id=decision_id,
        )
        return await self.send(command)

    async def cancel_order(self, consumer_id: str, client_order_id: str) -> ControlReply:
        """Cancel one of a consumer's orders."""
        return await self.send(
            CancelOrder(consumer_id=consumer_id, client_order_id=client_order_id)
        )

    async def query_order(self, consumer_id: str, client_order_id: str) -> ControlReply:
        """Ask for the state of one of a consumer's orders."""
        return await self.send(
            QueryOrder(consumer_id=consumer_id, client_order_id=client_order_id)
        )
