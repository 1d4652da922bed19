"""The trading switch: local to each consumer, fails closed, never stops exec reports."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.testing

from meltica_trio import (
    ConsumerContext,
    ControlAck,
    ControlResult,
    Event,
    ExecReport,
    Kind,
    OrderState,
    Pipeline,
    SetTradingSwitch,
    Side,
    SubmitOrder,
)
from meltica_trio.testing import assert_balanced, open_test_pipeline

SWITCH_OFF = "trading switch is off for consumer 'trader'"
NO_GATEWAY = "unknown provider 'binance' (known: none)"  # the gateway has no venue client


@attrs.define(eq=False)
class Trader:
    """Submits one order per trade it sees and keeps every answer and exec report."""

    orders: list[SubmitOrder] = attrs.field(factory=list)
    answers: list[ControlAck | ControlResult] = attrs.field(factory=list)
    reports: list[ExecReport] = attrs.field(factory=list)
    switch_seen: list[bool] = attrs.field(factory=list)
    refused_locally: int = 0

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        payload = event.payload
        if event.kind is Kind.TRADE:
            self.switch_seen.append(ctx.trading_enabled)
            self.orders.append(
                ctx.submit_order(
                    client_order_id=f"o-{len(self.orders)}",
                    provider="binance",
                    instrument="BTC-USDT",
                    side=Side.BUY,
                    quantity="1",
                    price="100",
                )
            )
            self.refused_locally = ctx.orders_refused_locally
        elif isinstance(payload, ControlAck | ControlResult):
            self.answers.append(payload)
        elif isinstance(payload, ExecReport):
            self.reports.append(payload)

    def results(self) -> list[ControlResult]:
        return [a for a in self.answers if isinstance(a, ControlResult)]


async def _publish(pipe: Pipeline, kind: Kind = Kind.TRADE, **fields: Any) -> None:
    event = pipe.new_event(kind=kind, provider="binance", instrument="BTC-USDT", **fields)
    await pipe.publish(event)


def _report(n: int) -> ExecReport:
    return ExecReport(
        exec_id=f"x-{n}",
        consumer_id="trader",
        client_order_id=f"o-{n}",
        venue_order_id=f"v-{n}",
        side=Side.BUY,
        price="100",
        quantity="1",
        state=OrderState.FILLED,
        filled="1",
        remaining="0",
        last_fill_price="100",
        last_fill_size="1",
    )


async def test_trading_starts_off_and_an_order_is_refused_in_the_consumers_own_lane() -> None:
    trader, bystander = Trader(), Trader()
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("trader", trader, kinds=[Kind.TRADE, Kind.EXEC_REPORT])
        # Subscribed to the answer kinds: still it must see no one else's answers.
        await pipe.subscribe("bystander", bystander, kinds=[Kind.CONTROL_ACK, Kind.CONTROL_RESULT])
        control = pipe.statistics().control

        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()

        (order,) = trader.orders
        assert trader.switch_seen == [False]
        assert trader.refused_locally == 1
        ack, result = trader.answers
        assert isinstance(ack, ControlAck)
        assert isinstance(result, ControlResult)
        assert ack.command_id == result.command_id == order.command_id
        assert ack.command == result.command == "submit_order"
        assert (ack.accepted, ack.reason) == (False, SWITCH_OFF)
        assert (result.ok, result.reason) == (False, SWITCH_OFF)
        assert ack.routing_version == pipe.routing.version
        # The order never left the runtime: the control bus saw nothing.
        assert pipe.statistics().control == control
        assert bystander.answers == []
        # The command still carries its decision, for the consumer's own bookkeeping.
        assert order.decision_id
        assert order.trace_id == order.decision_id
    assert_balanced(pipe)


async def test_with_the_switch_on_the_next_order_reaches_the_bus_and_is_refused_there() -> None:
    trader = Trader()
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("trader", trader, kinds=Kind.TRADE)
        reply = await pipe.control.set_trading_switch("trader", True)
        assert reply.ack.accepted
        assert reply.result.ok
        assert reply.result.detail == (("trading", "on"),)
        control = pipe.statistics().control

        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()

        assert trader.switch_seen == [True]
        assert trader.refused_locally == 0
        after = pipe.statistics().control
        assert (after.received, after.refused) == (control.received + 1, control.refused + 1)
        ack, result = trader.answers
        assert ack.command_id == result.command_id == trader.orders[0].command_id
        assert isinstance(ack, ControlAck)
        assert (ack.accepted, ack.reason) == (False, NO_GATEWAY)
        assert result.reason == NO_GATEWAY  # a different reason: it left the runtime
    assert_balanced(pipe)


async def test_switching_off_takes_effect_before_the_next_event_the_consumer_handles() -> None:
    trader = Trader()
    held = trio.Event()
    release = trio.Event()

    async def trading(event: Event, ctx: ConsumerContext) -> None:
        trader(event, ctx)
        if event.kind is Kind.TRADE and len(trader.orders) == 1:
            held.set()
            await release.wait()

    async with open_test_pipeline() as pipe:
        await pipe.subscribe("trader", trading, kinds=Kind.TRADE)
        await pipe.control.set_trading_switch("trader", True)
        await _publish(pipe)
        await _publish(pipe)  # queued behind the first, in the same lane
        await held.wait()

        reply = await pipe.control.set_trading_switch("trader", False)
        assert reply.result.detail == (("trading", "off"),)
        release.set()
        await trio.testing.wait_all_tasks_blocked()

        assert trader.switch_seen == [True, False]
        assert trader.refused_locally == 1
        reasons = {r.command_id: r.reason for r in trader.results()}
        first, second = trader.orders
        assert reasons == {first.command_id: NO_GATEWAY, second.command_id: SWITCH_OFF}
        # And on again: the very next event trades.
        await pipe.control.set_trading_switch("trader", True)
        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        assert trader.switch_seen == [True, False, True]
        assert trader.refused_locally == 1
    assert_balanced(pipe)


async def test_exec_reports_keep_arriving_while_the_switch_is_off() -> None:
    trader = Trader()
    gate = trio.Event()

    async def lagging(event: Event, ctx: ConsumerContext) -> None:
        await gate.wait()
        trader(event, ctx)

    async with open_test_pipeline() as pipe:
        await pipe.subscribe(
            "trader", lagging, kinds=[Kind.TRADE, Kind.EXEC_REPORT], lane_capacity=1
        )
        for n in range(30):
            await _publish(pipe, Kind.EXEC_REPORT, payload=_report(n))
            await _publish(pipe)  # trades overflow the lane; reports never do
        await trio.testing.wait_all_tasks_blocked()
        skipped = pipe.statistics().lanes[0].skipped
        assert skipped >= 28  # room for one trade, and maybe one more in the first batch
        gate.set()
        await trio.testing.wait_all_tasks_blocked()

        assert [r.exec_id for r in trader.reports] == [f"x-{n}" for n in range(30)]
        assert trader.refused_locally == len(trader.orders) == 30 - skipped
        assert {r.reason for r in trader.results()} == {SWITCH_OFF}
        assert not trader.switch_seen[0]
    assert_balanced(pipe)


async def test_cancels_and_queries_reach_the_bus_whatever_the_switch_says() -> None:
    results: list[ControlResult] = []

    def cautious(event: Event, ctx: ConsumerContext) -> None:
        if event.kind is Kind.TRADE:
            assert not ctx.trading_enabled
            ctx.cancel_order("o-1")
            ctx.query_order("o-1")
        elif isinstance(event.payload, ControlResult):
            results.append(event.payload)

    async with open_test_pipeline() as pipe:
        await pipe.subscribe("cautious", cautious, kinds=Kind.TRADE)
        received = pipe.statistics().control.received
        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        assert pipe.statistics().control.received == received + 2
        assert [r.reason for r in results] == [
            "no order 'o-1' for consumer 'cautious'",
            "no order 'o-1' for consumer 'cautious'",
        ]
    assert_balanced(pipe)


async def test_the_switch_is_per_consumer() -> None:
    alice, bob = Trader(), Trader()
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("alice", alice, kinds=Kind.TRADE)
        await pipe.subscribe("bob", bob, kinds=Kind.TRADE)
        await pipe.control.set_trading_switch("alice", True)
        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        assert (alice.switch_seen, bob.switch_seen) == ([True], [False])
        assert (alice.refused_locally, bob.refused_locally) == (0, 1)
        assert [r.reason for r in bob.results()] == ["trading switch is off for consumer 'bob'"]
    assert_balanced(pipe)


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (SetTradingSwitch(consumer_id="ghost", enabled=True), "unknown consumer 'ghost'"),
        (
            SetTradingSwitch(consumer_id="trader", enabled=1),  # type: ignore[arg-type]
            "enabled must be true or false, got 1",
        ),
    ],
)
async def test_a_refused_set_trading_switch_leaves_every_switch_off(
    command: SetTradingSwitch, reason: str
) -> None:
    trader = Trader()
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("trader", trader, kinds=Kind.TRADE)
        reply = await pipe.control.send(command)
        assert (reply.ack.accepted, reply.ack.reason) == (False, reason)
        assert (reply.result.ok, reply.result.reason) == (False, reason)
        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        assert trader.switch_seen == [False]
        assert trader.refused_locally == 1
    assert_balanced(pipe)


async def test_a_consumer_cannot_turn_its_own_switch_on() -> None:
    trader = Trader()
    calls = 0

    def sneaky(event: Event, ctx: ConsumerContext) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            ctx.trading_enabled = True  # type: ignore[misc]
        trader(event, ctx)

    async with open_test_pipeline() as pipe:
        await pipe.subscribe("trader", sneaky, kinds=Kind.TRADE)
        await _publish(pipe)
        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        (letter,) = pipe.dlq.entries()
        assert "AttributeError" in letter.error
        assert trader.switch_seen == [False]
        assert trader.refused_locally == 1
    assert_balanced(pipe)
