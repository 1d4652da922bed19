"""Control round trips through a real pipeline: answers, refusals, lanes, owner failures."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from meltica_trio import (
    CancelOrder,
    CommandRefusedError,
    ConfigureMerge,
    ConsumerContext,
    ControlAck,
    ControlReply,
    ControlResult,
    Event,
    FlipRouting,
    Kind,
    MergeRule,
    Pipeline,
    PipelineClosedError,
    PipelineConfig,
    QueryOrder,
    SetTradingSwitch,
    StageRouting,
    SubmitOrder,
    Subscribe,
    SubscribeMerged,
    Subscription,
    Unsubscribe,
)
from meltica_trio.orchestrator import MergeControl
from meltica_trio.testing import assert_balanced, open_test_pipeline

_CONTROL_LOGGER = "meltica_trio.bus._control"
_ANSWER_KINDS = frozenset({Kind.CONTROL_ACK, Kind.CONTROL_RESULT})

BTC_TOP = MergeRule(
    name="btc-top",
    instrument="BTC-USDT",
    kind=Kind.TICKER,
    providers=frozenset({"binance", "okx"}),
    window=1.0,
    max_count=10,
)


def _config(**overrides: Any) -> PipelineConfig:
    return PipelineConfig(debug=True, **overrides)


def _open(config: PipelineConfig | None = None) -> AbstractAsyncContextManager[Pipeline]:
    return open_test_pipeline(config or _config(merges=[BTC_TOP]))


@attrs.frozen
class Seen:
    """What a consumer saw of one event (never the envelope itself)."""

    kind: Kind
    provider: str
    payload: object


@attrs.define(eq=False)
class Recorder:
    """A sync consumer that keeps what it saw."""

    seen: list[Seen] = attrs.field(factory=list)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        self.seen.append(Seen(event.kind, event.provider, event.payload))

    def answers(self) -> list[ControlAck | ControlResult]:
        found: list[ControlAck | ControlResult] = []
        for seen in self.seen:
            if seen.kind in _ANSWER_KINDS:
                assert isinstance(seen.payload, ControlAck | ControlResult)
                found.append(seen.payload)
        return found

    def kinds(self) -> list[Kind]:
        return [seen.kind for seen in self.seen]


async def _publish(pipe: Pipeline, kind: Kind = Kind.TRADE, instrument: str = "BTC-USDT") -> None:
    await pipe.publish(pipe.new_event(kind=kind, provider="binance", instrument=instrument))


@attrs.frozen
class RoutingState:
    """Everything a refused command must leave as it was."""

    version: int
    routes: tuple[Subscription | None, ...]
    count: int
    merge_rules: tuple[MergeRule, ...]


def _state(pipe: Pipeline, *consumer_ids: str) -> RoutingState:
    return RoutingState(
        pipe.routing.version,
        tuple(pipe.routing.subscription(c) for c in consumer_ids),
        len(pipe.routing),
        pipe.merger.rules(),
    )


# -- every command type: an ack, then a result ----------------------------------------


def _order(command: type[SubmitOrder] | type[CancelOrder] | type[QueryOrder]) -> Any:
    if command is SubmitOrder:
        return SubmitOrder(
            consumer_id="c",
            client_order_id="o-1",
            provider="binance",
            instrument="BTC-USDT",
            side="buy",
            quantity="1",
            price="100",
        )
    return command(consumer_id="c", client_order_id="o-1")


COMMANDS: dict[str, Callable[[], Any]] = {
    "subscribe": lambda: Subscribe(consumer_id="c", kinds=[Kind.TRADE, Kind.TICKER]),
    "unsubscribe": lambda: Unsubscribe(consumer_id="c"),
    "subscribe_merged": lambda: SubscribeMerged(consumer_id="c", instrument="BTC-USDT"),
    "stage_routing": lambda: StageRouting(
        consumer_id="operator", changes=(Subscribe(consumer_id="c", kinds=Kind.TICKER),)
    ),
    "flip_routing": lambda: FlipRouting(consumer_id="operator"),
    "set_trading_switch": lambda: SetTradingSwitch(consumer_id="c", enabled=True),
    "configure_merge": lambda: ConfigureMerge(
        consumer_id="operator",
        name="eth-top",
        instrument="ETH-USDT",
        kind="ticker",
        providers=["binance", "okx"],
        window=0.5,
        max_count=4,
    ),
    "submit_order": lambda: _order(SubmitOrder),
    "cancel_order": lambda: _order(CancelOrder),
    "query_order": lambda: _order(QueryOrder),
}
CHANGES_ROUTING = {"subscribe", "unsubscribe", "subscribe_merged", "flip_routing"}
ORDERS = {"submit_order", "cancel_order", "query_order"}


@pytest.mark.parametrize("name", list(COMMANDS))
async def test_every_command_type_is_answered_by_an_ack_and_a_result_with_its_command_id(
    name: str,
) -> None:
    async with _open() as pipe:
        await pipe.subscribe("c", Recorder(), kinds=Kind.TRADE)
        if name == "flip_routing":
            await pipe.control.stage_routing(Subscribe(consumer_id="c", kinds=Kind.TICKER))
        command = COMMANDS[name]()
        version = pipe.routing.version
        before = pipe.statistics().control

        reply = await pipe.control.send(command)

        ack, result = reply.ack, reply.result
        assert isinstance(reply, ControlReply)
        assert ack.command_id == result.command_id == command.command_id
        assert len(command.command_id) == 32  # minted: a uuid4 hex
        assert ack.command == result.command == name
        assert ack.routing_version == version  # quoted before the command applied
        accepted = name not in ORDERS
        assert ack.accepted is result.ok is accepted
        after = pipe.statistics().control
        assert after.received == before.received + 1
        assert after.accepted == before.accepted + accepted
        assert after.refused == before.refused + (not accepted)
        assert after.failed == before.failed == 0
        if name in CHANGES_ROUTING:
            assert pipe.routing.version == version + 1
            assert ("routing_version", str(version + 1)) in result.detail
        else:
            assert pipe.routing.version == version
    assert_balanced(pipe)


async def test_a_given_command_id_is_repeated_by_both_answers() -> None:
    async with _open() as pipe:
        await pipe.subscribe("c", Recorder())
        reply = await pipe.control.send(Subscribe(consumer_id="c", command_id="mine-1"))
        assert (reply.ack.command_id, reply.result.command_id) == ("mine-1", "mine-1")
        assert (reply.result.ok, reply.result.reason) == (True, "unchanged")


def _no_venue_reason(name: str, consumer_id: str = "c") -> str:
    """Why the order gateway of a pipeline without venue clients refuses ``name``."""
    if name == "submit_order":
        return "unknown provider 'binance' (known: none)"
    return f"no order 'o-1' for consumer {consumer_id!r}"


@pytest.mark.parametrize("name", sorted(ORDERS))
async def test_order_commands_reach_the_gateway_which_refuses_them_without_venues(
    name: str,
) -> None:
    async with _open() as pipe:
        await pipe.subscribe("c", Recorder())
        state = _state(pipe, "c")
        reply = await pipe.control.send(COMMANDS[name]())
        reason = _no_venue_reason(name)
        assert (reply.ack.accepted, reply.ack.reason) == (False, reason)
        assert (reply.result.ok, reply.result.reason) == (False, reason)
        assert _state(pipe, "c") == state


async def test_the_control_client_sends_operator_order_commands_for_a_consumer() -> None:
    async with _open() as pipe:
        await pipe.subscribe("c", Recorder())
        replies = [
            await pipe.control.submit_order(
                "c",
                client_order_id="o-1",
                provider="binance",
                instrument="BTC-USDT",
                side="sell",
                quantity="2",
                price="101",
                decision_id="d-1",
            ),
            await pipe.control.cancel_order("c", "o-1"),
            await pipe.control.query_order("c", "o-1"),
        ]
        names = [reply.result.command for reply in replies]
        assert names == ["submit_order", "cancel_order", "query_order"]
        assert all(not reply.ack.accepted for reply in replies)
        assert pipe.statistics().control.refused == 3


# -- refusals change nothing and say why ------------------------------------------------


class NotACommand:
    consumer_id = "c"
    command_id = "x-1"


REFUSALS: dict[str, tuple[Callable[[], Any], str]] = {
    "unknown consumer": (
        lambda: Subscribe(consumer_id="ghost", kinds=Kind.TRADE),
        "unknown consumer 'ghost'",
    ),
    "unsubscribe an unknown consumer": (
        lambda: Unsubscribe(consumer_id="ghost"),
        "unknown consumer 'ghost'",
    ),
    "merged view for an unknown consumer": (
        lambda: SubscribeMerged(consumer_id="ghost", instrument="BTC-USDT"),
        "unknown consumer 'ghost'",
    ),
    "switch of an unknown consumer": (
        lambda: SetTradingSwitch(consumer_id="ghost", enabled=True),
        "unknown consumer 'ghost'",
    ),
    "no consumer id": (lambda: Subscribe(consumer_id=""), "a command must name its consumer_id"),
    "malformed instrument": (
        lambda: Subscribe(consumer_id="c", instruments="btcusdt"),
        "'btcusdt' is not a canonical instrument (BASE-QUOTE, upper case)",
    ),
    "malformed instrument among good ones": (
        lambda: Subscribe(consumer_id="c", instruments=["BTC-USDT", "ETH/USDT"]),
        "'ETH/USDT' is not a canonical instrument",
    ),
    "malformed merged instrument": (
        lambda: SubscribeMerged(consumer_id="c", instrument="btc-usdt"),
        "'btc-usdt' is not a canonical instrument",
    ),
    "merged view without a rule": (
        lambda: SubscribeMerged(consumer_id="c", instrument="ETH-USDT"),
        "no merge rule for 'ETH-USDT'; configure one first",
    ),
    "merged view of an unknown rule": (
        lambda: SubscribeMerged(consumer_id="c", instrument="BTC-USDT", rule="nope"),
        "no merge rule named 'nope' for 'BTC-USDT'",
    ),
    "flip with nothing staged": (
        lambda: FlipRouting(consumer_id="operator"),
        "nothing is staged to flip",
    ),
    "stage nothing": (
        lambda: StageRouting(consumer_id="operator", changes=()),
        "stage_routing needs a non-empty tuple",
    ),
    "stage a change for an unknown consumer": (
        lambda: StageRouting(
            consumer_id="operator",
            changes=(Subscribe(consumer_id="c"), Subscribe(consumer_id="ghost")),
        ),
        "change for 'ghost': unknown consumer 'ghost'",
    ),
    "stage a malformed instrument": (
        lambda: StageRouting(
            consumer_id="operator", changes=(Subscribe(consumer_id="c", instruments="x"),)
        ),
        "change for 'c': 'x' is not a canonical instrument",
    ),
    "stage a flip": (
        lambda: StageRouting(
            consumer_id="operator",
            changes=(FlipRouting(consumer_id="operator"),),  # type: ignore[arg-type]
        ),
        "FlipRouting cannot be staged",
    ),
    "a switch that is not a bool": (
        lambda: SetTradingSwitch(consumer_id="c", enabled="yes"),  # type: ignore[arg-type]
        "enabled must be true or false, got 'yes'",
    ),
    "merge window of zero": (
        lambda: _merge(window=0),
        "window: must be a finite number of seconds > 0, got 0",
    ),
    "negative merge window": (
        lambda: _merge(window=-1.5),
        "window: must be a finite number of seconds > 0, got -1.5",
    ),
    "merge of one provider": (
        lambda: _merge(providers=["binance"], max_count=1),
        "providers: a merge needs at least 2 providers, got ['binance']",
    ),
    "merge count below its providers": (
        lambda: _merge(max_count=1),
        "max_count: must be at least the 2 expected providers, got 1",
    ),
    "merge of a kind that has no top of book": (
        lambda: _merge(kind="trade"),
        "kind: a merge rule merges book_snapshot, ticker, not trade",
    ),
    "merge rule name taken": (
        lambda: _merge(name="btc-top"),
        "name: rule name 'btc-top' is taken by btc-top",
    ),
    "not a command": (lambda: NotACommand(), "NotACommand is not a control command"),
    "a plain object": (lambda: object(), "object is not a control command"),
}


def _merge(**overrides: Any) -> ConfigureMerge:
    fields: dict[str, Any] = {
        "consumer_id": "operator",
        "name": "eth-top",
        "instrument": "ETH-USDT",
        "kind": "ticker",
        "providers": ["binance", "okx"],
        "window": 0.5,
        "max_count": 4,
    }
    fields.update(overrides)
    return ConfigureMerge(**fields)


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_a_refused_command_changes_nothing_and_says_why(case: str) -> None:
    build, reason = REFUSALS[case]
    recorder = Recorder()
    async with _open() as pipe:
        await pipe.subscribe("c", recorder, kinds=Kind.TRADE)
        await pipe.subscribe("d", Recorder(), instruments="BTC-USDT")
        state = _state(pipe, "c", "d")
        before = pipe.statistics().control

        reply = await pipe.control.send(build())

        assert reply.ack.accepted is False
        assert reply.result.ok is False
        assert reply.ack.reason is not None
        assert reply.ack.reason.startswith(reason), reply.ack.reason
        assert reply.result.reason == reply.ack.reason
        assert reply.result.detail == ()
        assert _state(pipe, "c", "d") == state
        after = pipe.statistics().control
        assert (after.received, after.refused) == (before.received + 1, before.refused + 1)
        assert after.accepted == before.accepted
        # Nothing was staged either: a flip still has nothing to do.
        flip = await pipe.control.flip_routing()
        assert flip.ack.reason == "nothing is staged to flip"
        # The consumer still gets what it subscribed to, and no answers.
        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        assert recorder.kinds() == [Kind.TRADE]
    assert_balanced(pipe)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Subscribe(consumer_id="c", kinds=["candle"]),
        lambda: _merge(kind="candle"),
    ],
)
def test_an_unknown_kind_is_refused_by_the_command_constructor(
    build: Callable[[], object],
) -> None:
    with pytest.raises(ValueError, match="candle"):
        build()


async def test_an_unknown_kind_never_reaches_the_bus() -> None:
    async with _open() as pipe:
        await pipe.subscribe("c", Recorder(), kinds=Kind.TRADE)
        state, received = _state(pipe, "c"), pipe.statistics().control.received
        with pytest.raises(ValueError, match="candle"):
            await pipe.control.subscribe("c", kinds=["candle"])
        assert _state(pipe, "c") == state
        assert pipe.statistics().control.received == received


async def test_an_instrument_outside_the_configured_universe_is_refused_until_declared() -> None:
    async with _open(_config(instruments=["BTC-USDT"])) as pipe:
        await pipe.subscribe("c", Recorder(), instruments="BTC-USDT")
        state = _state(pipe, "c")

        refused = await pipe.control.subscribe("c", instruments=["BTC-USDT", "ETH-USDT"])
        assert refused.ack.reason == "unknown instrument 'ETH-USDT'"
        staged = await pipe.control.stage_routing(
            Subscribe(consumer_id="c", instruments="SOL-USDT")
        )
        assert staged.ack.reason == "change for 'c': unknown instrument 'SOL-USDT'"
        with pytest.raises(CommandRefusedError, match="unknown instrument 'ETH-USDT'"):
            await pipe.subscribe("e", Recorder(), instruments="ETH-USDT")
        assert _state(pipe, "c") == state
        assert pipe.statistics().subscribers == 1  # the refused newcomer is gone again

        pipe.declare_instruments("okx", ["ETH-USDT"])
        accepted = await pipe.control.subscribe("c", instruments=["BTC-USDT", "ETH-USDT"])
        assert accepted.ack.accepted
        assert accepted.result.ok
        assert pipe.routing.version == state.version + 1
        # A filter of None (every instrument) is never refused by the universe.
        assert (await pipe.control.subscribe("c")).result.ok


async def test_a_refused_change_of_filters_leaves_a_running_consumer_running() -> None:
    recorder = Recorder()
    async with _open() as pipe:
        await pipe.subscribe("c", recorder, kinds=Kind.TRADE)
        state = _state(pipe, "c")
        with pytest.raises(CommandRefusedError, match="btcusdt"):
            await pipe.subscribe("c", recorder, instruments="btcusdt")
        assert _state(pipe, "c") == state
        assert pipe.statistics().subscribers == 1
        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        assert recorder.kinds() == [Kind.TRADE]
    assert_balanced(pipe)


# -- idempotence ---------------------------------------------------------------------


async def test_subscribing_twice_with_the_same_filters_changes_nothing() -> None:
    async with _open() as pipe:
        recorder = Recorder()
        version = await pipe.subscribe("c", recorder, kinds=[Kind.TRADE], instruments="BTC-USDT")
        assert await pipe.subscribe("c", recorder, kinds=Kind.TRADE, instruments=["BTC-USDT"]) == (
            version
        )
        again = await pipe.control.subscribe("c", kinds=[Kind.TRADE], instruments=["BTC-USDT"])
        assert again.ack.accepted is True
        assert (again.result.ok, again.result.reason) == (True, "unchanged")
        assert again.result.detail == (("routing_version", str(version)),)
        assert pipe.routing.version == version

        merged = await pipe.control.subscribe_merged("c", "BTC-USDT")
        assert merged.result.reason is None
        merged_again = await pipe.control.subscribe_merged("c", "BTC-USDT", rule="btc-top")
        assert merged_again.result.reason == "unchanged"
        gone = await pipe.control.unsubscribe("c")
        assert gone.result.reason is None
        gone_again = await pipe.control.unsubscribe("c")
        assert (gone_again.ack.accepted, gone_again.result.reason) == (True, "unchanged")
        assert pipe.routing.version == version + 2
        assert pipe.statistics().subscribers == 1  # an Unsubscribe command keeps the function


async def test_configuring_the_same_merge_rule_twice_reports_it_unchanged() -> None:
    async with _open() as pipe:
        first = await pipe.control.send(_merge())
        second = await pipe.control.send(_merge())
        replaced = await pipe.control.send(_merge(window=0.25))
        assert dict(first.result.detail)["state"] == "added"
        assert dict(second.result.detail)["state"] == "unchanged"
        assert dict(replaced.result.detail)["state"] == "replaced"
        assert dict(replaced.result.detail)["rule"] == "eth-top"
        assert len(pipe.merger.rules()) == 2


# -- where answers go -----------------------------------------------------------------


async def test_answers_to_a_consumers_own_commands_arrive_in_its_lane_only() -> None:
    commands: list[Any] = []
    trader_saw = Recorder()
    bystander = Recorder()

    def trader(event: Event, ctx: ConsumerContext) -> None:
        trader_saw(event, ctx)
        if event.kind is Kind.TRADE:
            commands.append(ctx.cancel_order("o-1"))
            commands.append(ctx.query_order("o-1"))
            commands.append(
                ctx.submit_order(
                    client_order_id="o-2",
                    provider="binance",
                    instrument="BTC-USDT",
                    side="buy",
                    quantity="1",
                )
            )

    async with _open() as pipe:
        await pipe.subscribe("trader", trader, kinds=Kind.TRADE)
        await pipe.subscribe("bystander", bystander)  # every kind, every instrument
        await pipe.control.set_trading_switch("trader", True)
        received = pipe.statistics().control.received

        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()

        assert pipe.statistics().control.received == received + 3
        answers = trader_saw.answers()
        kinds = trader_saw.kinds()
        assert kinds == [Kind.TRADE] + [Kind.CONTROL_ACK, Kind.CONTROL_RESULT] * 3
        assert all(Kind(kind).is_critical for kind in kinds[1:])
        assert all(seen.provider == "control" for seen in trader_saw.seen[1:])
        names = ["cancel_order", "query_order", "submit_order"]
        for n, (command, name) in enumerate(zip(commands, names, strict=True)):
            ack, result = answers[2 * n], answers[2 * n + 1]
            assert isinstance(ack, ControlAck)
            assert isinstance(result, ControlResult)
            assert ack.command_id == result.command_id == command.command_id
            assert ack.command == result.command == name
            assert ack.reason == result.reason == _no_venue_reason(name, "trader")
            assert ack.routing_version == pipe.routing.version
        assert bystander.kinds() == [Kind.TRADE]
    assert_balanced(pipe)


async def test_python_callers_get_their_answers_returned_and_none_in_lanes() -> None:
    recorder = Recorder()
    async with _open() as pipe:
        await pipe.subscribe("c", recorder)  # every kind: it would see answers put in its lane
        replies = [
            await pipe.control.subscribe("c", kinds=[Kind.TRADE, Kind.CONTROL_ACK]),
            await pipe.control.set_trading_switch("c", True),
            await pipe.control.subscribe_merged("c", "BTC-USDT"),
            await pipe.control.cancel_order("c", "o-1"),
            await pipe.control.send(Subscribe(consumer_id="ghost")),
            await pipe.control.stage_routing(Subscribe(consumer_id="c")),
            await pipe.control.flip_routing(),
        ]
        await trio.testing.wait_all_tasks_blocked()
        assert all(isinstance(reply, ControlReply) for reply in replies)
        assert recorder.seen == []
        assert pipe.statistics().lanes[0].delivered == 0
    assert_balanced(pipe)


async def test_answers_are_critical_and_survive_a_lane_flooded_with_market_data() -> None:
    gate = trio.Event()
    ids: list[str] = []
    answers: list[ControlAck | ControlResult] = []
    trades = 0

    async def trader(event: Event, ctx: ConsumerContext) -> None:
        nonlocal trades
        if event.kind is Kind.TRADE:
            trades += 1
            if trades == 1:
                ids.extend(ctx.cancel_order(f"o-{n}").command_id for n in range(5))
                await gate.wait()
        else:
            assert isinstance(event.payload, ControlAck | ControlResult)
            answers.append(event.payload)

    async with _open() as pipe:
        await pipe.subscribe("trader", trader, kinds=Kind.TRADE, lane_capacity=2)
        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(20):
            await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        lane = pipe.statistics().lanes[0]
        assert lane.critical_backlog == 10
        assert lane.skipped == 18  # 20 trades, room for 2
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert [a.command_id for a in answers] == [i for i in ids for _ in range(2)]
        assert [type(a) for a in answers] == [ControlAck, ControlResult] * 5
        assert trades == 3
    assert_balanced(pipe)


async def test_orders_past_a_full_control_queue_are_refused_in_the_consumers_lane() -> None:
    capacity = 1024  # CONTROL_CAPACITY: the bus queue a sync handler can fill
    sent: list[str] = []
    results: list[ControlResult] = []

    def trader(event: Event, ctx: ConsumerContext) -> None:
        if event.kind is Kind.TRADE:
            sent.extend(ctx.query_order(f"o-{n}").command_id for n in range(capacity + 6))
        elif isinstance(event.payload, ControlResult):
            results.append(event.payload)

    async with _open() as pipe:
        await pipe.subscribe("trader", trader, kinds=Kind.TRADE)
        received = pipe.statistics().control.received
        await _publish(pipe)
        # Not wait_idle: the pool is idle between two commands of the control task.
        await trio.testing.wait_all_tasks_blocked()
        handled = pipe.statistics().control.received - received
        # The queue's capacity, plus the one handed straight to the waiting control task.
        assert capacity <= handled <= capacity + 1
        local = [r for r in results if r.reason == "the control bus is full; nothing was sent"]
        remote = [r for r in results if r not in local]
        # The overflow never left the runtime: answered at once, in the lane, in order.
        assert results[: len(local)] == local
        assert [r.command_id for r in local] == sent[handled:]
        assert [r.command_id for r in remote] == sent[:handled]
        # The gateway got them: it knows no such orders (each query names its own id).
        assert all(r.reason is not None and r.reason.startswith("no order 'o-") for r in remote)
    assert_balanced(pipe)


def test_a_context_without_a_control_bus_refuses_orders_through_its_deliver_callback() -> None:
    delivered: list[tuple[str, ControlAck | ControlResult]] = []
    ctx = ConsumerContext(
        "lonely", deliver=lambda consumer_id, answer: delivered.append((consumer_id, answer))
    )
    command = ctx.cancel_order("o-1")
    assert [consumer_id for consumer_id, _ in delivered] == ["lonely", "lonely"]
    ack, result = (answer for _, answer in delivered)
    assert isinstance(ack, ControlAck)
    assert isinstance(result, ControlResult)
    assert ack.command_id == result.command_id == command.command_id
    assert ack.reason == result.reason == "this consumer is not attached to a control bus"
    assert ack.routing_version == 0


# -- owner failures -------------------------------------------------------------------


async def test_an_owner_that_raises_while_applying_gives_an_internal_error_and_the_bus_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: MergeControl, command: ConfigureMerge) -> Any:
        raise RuntimeError("merger on fire")

    monkeypatch.setattr(MergeControl, "apply", broken)
    recorder = Recorder()
    async with _open() as pipe:
        await pipe.subscribe("c", recorder, kinds=Kind.TRADE)
        with caplog.at_level(logging.ERROR, logger=_CONTROL_LOGGER):
            reply = await pipe.control.send(_merge())
        assert reply.ack.accepted is True  # check passed: the failure is in apply
        assert reply.result.ok is False
        assert reply.result.reason == "internal error: RuntimeError: merger on fire"
        assert pipe.statistics().control.failed == 1
        (record,) = [r for r in caplog.records if r.name == _CONTROL_LOGGER]
        assert "applying ConfigureMerge failed" in record.getMessage()
        assert record.exc_info is not None

        # The control task is still serving, for Python callers and consumers alike.
        version = pipe.routing.version
        assert (await pipe.control.subscribe("c", kinds=[Kind.TRADE, Kind.TICKER])).result.ok
        assert pipe.routing.version == version + 1
        assert (await pipe.control.set_trading_switch("c", True)).result.ok
        stats = pipe.statistics().control
        assert (stats.failed, stats.queued) == (1, 0)
    assert_balanced(pipe)


async def test_an_owner_that_raises_while_checking_refuses_the_command_as_malformed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: MergeControl, command: ConfigureMerge) -> str | None:
        raise KeyError("providers")

    monkeypatch.setattr(MergeControl, "check", broken)
    async with _open() as pipe:
        rules = pipe.merger.rules()
        with caplog.at_level(logging.CRITICAL, logger=_CONTROL_LOGGER):
            reply = await pipe.control.send(_merge())
        assert reply.ack.accepted is False
        assert reply.ack.reason == "malformed command: 'providers'"
        assert pipe.merger.rules() == rules
        assert pipe.statistics().control.failed == 0
        assert (await pipe.control.flip_routing()).ack.reason == "nothing is staged to flip"


# -- shutdown --------------------------------------------------------------------------


async def test_a_command_after_the_pipeline_closed_raises_pipeline_closed_error() -> None:
    async with _open() as pipe:
        await pipe.subscribe("c", Recorder())
    with pytest.raises(PipelineClosedError, match="control bus is closed"):
        await pipe.control.subscribe("c", kinds=Kind.TRADE)


@pytest.mark.parametrize("round_", range(8))
async def test_commands_sent_from_outside_as_the_pipeline_closes_are_not_left_waiting(
    round_: int, autojump_clock: trio.testing.MockClock
) -> None:
    # Operators in a nursery outside the pipeline are not cancelled with it. Each one
    # either queues its command before the control task's last look at its queue or
    # finds the queue closed; both must end in PipelineClosedError, never a hang.
    outcomes: list[BaseException] = []

    async def operator() -> None:
        try:
            with trio.fail_after(60):
                await pipe.control.flip_routing()
        except (PipelineClosedError, trio.TooSlowError) as exc:
            outcomes.append(exc)

    async with trio.open_nursery() as outside, _open() as pipe:
        for _ in range(3):
            outside.start_soon(operator)
        # No checkpoint: the block ends before the operators run.
    assert [type(exc) for exc in outcomes] == [PipelineClosedError] * 3
    assert trio.current_time() < 60
    assert_balanced(pipe)


async def test_a_context_used_after_the_pipeline_closed_refuses_without_raising() -> None:
    kept: list[ConsumerContext] = []

    def keeper(event: Event, ctx: ConsumerContext) -> None:
        kept.append(ctx)

    async with _open() as pipe:
        await pipe.subscribe("keeper", keeper)
        await _publish(pipe)
        await pipe.wait_idle()
    (ctx,) = kept
    ctx.cancel_order("o-late")  # answered into a closed lane: recycled, never raised
    assert_balanced(pipe)
