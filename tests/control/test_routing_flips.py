"""Routing flips: staged changes apply atomically, versions travel with events, load."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from meltica_trio import (
    ConsumerContext,
    ConsumerStatistics,
    Event,
    ExecReport,
    Kind,
    MergeRule,
    OrderState,
    Pipeline,
    PipelineConfig,
    Side,
    StageRouting,
    Subscribe,
    Trade,
    Unsubscribe,
)
from meltica_trio.testing import assert_balanced, open_test_pipeline


def _config(**overrides: Any) -> PipelineConfig:
    return PipelineConfig(debug=True, **overrides)


def _consumer(pipe: Pipeline, consumer_id: str) -> ConsumerStatistics:
    (found,) = (c for c in pipe.statistics().consumers if c.consumer_id == consumer_id)
    return found


@attrs.frozen
class Seen:
    event_id: int
    kind: Kind
    instrument: str
    routing_version: int


@attrs.define(eq=False)
class Recorder:
    """A sync consumer that keeps what it saw (never the envelope itself)."""

    seen: list[Seen] = attrs.field(factory=list)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        self.seen.append(Seen(event.event_id, event.kind, event.instrument, event.routing_version))

    def ids(self) -> list[int]:
        return [seen.event_id for seen in self.seen]


def _trade(n: int) -> Trade:
    return Trade(price="100", size="1", side=Side.BUY, trade_id=str(n), trade_ts=n)


def _exec_report(n: int) -> ExecReport:
    return ExecReport(
        exec_id=f"x-{n}",
        consumer_id="anyone",
        client_order_id=f"o-{n}",
        venue_order_id=None,
        side=Side.SELL,
        price="100",
        quantity="1",
        state=OrderState.ACK,
        filled="0",
        remaining="1",
    )


async def _publish(
    pipe: Pipeline, kind: Kind = Kind.TRADE, instrument: str = "BTC-USDT", n: int = 0
) -> int:
    payload = _exec_report(n) if kind is Kind.EXEC_REPORT else _trade(n)
    event = pipe.new_event(kind=kind, provider="binance", instrument=instrument, payload=payload)
    event_id = event.event_id
    await pipe.publish(event)
    return event_id


# -- atomic flips -------------------------------------------------------------------


async def test_staged_changes_change_nothing_until_the_flip_applies_them_all_at_once() -> None:
    a, b, c = Recorder(), Recorder(), Recorder()
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("a", a, kinds=Kind.TRADE)
        await pipe.subscribe("b", b, kinds=Kind.TRADE)
        await pipe.subscribe("c", c, instruments="BTC-USDT")
        version = pipe.routing.version
        before = [pipe.routing.subscription(name) for name in "abc"]

        staged = await pipe.control.stage_routing(
            Subscribe(consumer_id="a", kinds=Kind.EXEC_REPORT),
            Unsubscribe(consumer_id="b"),
            Subscribe(consumer_id="c", instruments="ETH-USDT"),
        )
        assert staged.result.detail == (("staged", "3"),)
        assert staged.ack.routing_version == version
        # Staged is not current: the table, its version and delivery are as they were.
        assert pipe.routing.version == version
        assert [pipe.routing.subscription(name) for name in "abc"] == before
        old = [
            await _publish(pipe, Kind.TRADE),
            await _publish(pipe, Kind.EXEC_REPORT),
            await _publish(pipe, Kind.TRADE, "ETH-USDT"),
        ]
        await trio.testing.wait_all_tasks_blocked()
        assert a.ids() == b.ids() == [old[0], old[2]]
        assert c.ids() == old[:2]

        flip = await pipe.control.flip_routing()
        assert flip.ack.routing_version == version
        assert flip.result.detail == (("routing_version", str(version + 1)), ("affected", "a,b,c"))
        assert pipe.routing.version == version + 1  # three changes, one version
        assert pipe.routing.subscription("b") is None
        new = [
            await _publish(pipe, Kind.TRADE),
            await _publish(pipe, Kind.EXEC_REPORT),
            await _publish(pipe, Kind.TRADE, "ETH-USDT"),
        ]
        await trio.testing.wait_all_tasks_blocked()
        assert a.ids() == [old[0], old[2], new[1]]
        assert b.ids() == [old[0], old[2]]
        assert c.ids() == [*old[:2], new[2]]
        for recorder in (a, b, c):
            assert [s.routing_version for s in recorder.seen] == [
                version if s.event_id in old else version + 1 for s in recorder.seen
            ]
        assert all(_consumer(pipe, name).min_version == version + 1 for name in "abc")
    assert_balanced(pipe)


async def test_a_plain_subscribe_leaves_what_others_staged_for_their_own_flip() -> None:
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("a", Recorder(), kinds=Kind.TRADE)
        await pipe.subscribe("b", Recorder(), kinds=Kind.TRADE)
        version = pipe.routing.version
        await pipe.control.stage_routing(Subscribe(consumer_id="a", kinds=Kind.TICKER))

        plain = await pipe.control.subscribe("b", kinds=Kind.EXEC_REPORT)
        assert plain.result.detail == (("routing_version", str(version + 1)), ("affected", "b"))
        a = pipe.routing.subscription("a")
        assert a is not None
        assert a.kinds == frozenset({Kind.TRADE})  # still staged, not applied
        assert _consumer(pipe, "a").min_version < version + 1

        flip = await pipe.control.flip_routing()
        assert flip.result.detail == (("routing_version", str(version + 2)), ("affected", "a"))
        a = pipe.routing.subscription("a")
        assert a is not None
        assert a.kinds == frozenset({Kind.TICKER})


async def test_a_later_staged_change_for_a_consumer_replaces_its_earlier_one() -> None:
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("a", Recorder(), kinds=Kind.TRADE)
        await pipe.subscribe("newcomer", Recorder(), kinds=Kind.TRADE)
        await pipe.control.unsubscribe("newcomer")  # registered, routed nowhere
        version = pipe.routing.version

        # Staged away and back again: nothing is left to flip.
        await pipe.control.stage_routing(Subscribe(consumer_id="a", kinds=Kind.TICKER))
        back = await pipe.control.stage_routing(Subscribe(consumer_id="a", kinds=Kind.TRADE))
        assert back.result.detail == (("staged", "0"),)
        assert (await pipe.control.flip_routing()).ack.reason == "nothing is staged to flip"

        # Routed, then unrouted, within one stage: the consumer stays unrouted.
        await pipe.control.stage_routing(
            Subscribe(consumer_id="newcomer"), Unsubscribe(consumer_id="newcomer")
        )
        await pipe.control.stage_routing(Subscribe(consumer_id="a", kinds=Kind.KLINE))
        await pipe.control.stage_routing(Subscribe(consumer_id="a", kinds=Kind.BOOK_DELTA))
        flip = await pipe.control.flip_routing()
        assert flip.result.ok
        assert dict(flip.result.detail)["affected"] == "a"
        assert pipe.routing.subscription("newcomer") is None
        a = pipe.routing.subscription("a")
        assert a is not None
        assert a.kinds == frozenset({Kind.BOOK_DELTA})
        assert pipe.routing.version == version + 1


async def test_a_stage_with_one_refused_change_stages_none_of_them() -> None:
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("a", Recorder(), kinds=Kind.TRADE)
        reply = await pipe.control.stage_routing(
            Subscribe(consumer_id="a", kinds=Kind.TICKER), Subscribe(consumer_id="ghost")
        )
        assert reply.ack.reason == "change for 'ghost': unknown consumer 'ghost'"
        assert (await pipe.control.flip_routing()).ack.reason == "nothing is staged to flip"


async def test_staged_commands_may_come_from_any_requester_and_be_sent_as_commands() -> None:
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("a", Recorder(), kinds=Kind.TRADE)
        command = StageRouting(
            consumer_id="a", changes=(Subscribe(consumer_id="a", kinds=Kind.TICKER),)
        )
        assert (await pipe.control.send(command)).result.ok
        flip = await pipe.control.flip_routing(requester="a")
        assert flip.result.ok


async def test_a_consumer_stopped_after_its_change_was_staged_gets_no_route_at_the_flip() -> None:
    async with open_test_pipeline() as pipe:
        await pipe.subscribe("a", Recorder(), kinds=Kind.TRADE)
        await pipe.subscribe("leaving", Recorder(), kinds=Kind.TRADE)
        await pipe.control.stage_routing(
            Subscribe(consumer_id="a", kinds=Kind.TICKER),
            Subscribe(consumer_id="leaving", kinds=Kind.TICKER),
        )
        await pipe.unsubscribe("leaving")
        await pipe.control.flip_routing()
        assert pipe.routing.subscription("leaving") is None
        assert len(pipe.routing) == 1
        await _publish(pipe, Kind.TICKER)
        await trio.testing.wait_all_tasks_blocked()
        assert pipe.statistics().fanout.deliveries == 1  # "a" only, no closed lane
    assert_balanced(pipe)


@pytest.mark.parametrize("round_", range(12))
async def test_an_unsubscribe_racing_a_subscribe_never_leaves_a_route_to_a_stopped_consumer(
    round_: int,
) -> None:
    rule = MergeRule(
        instrument="BTC-USDT",
        kind=Kind.TICKER,
        providers=frozenset({"binance", "okx"}),
        window=1.0,
        max_count=2,
    )
    async with open_test_pipeline(_config(merges=[rule])) as pipe:
        await pipe.subscribe("r", Recorder(), kinds=Kind.TRADE)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pipe.unsubscribe, "r")
            nursery.start_soon(pipe.control.subscribe, "r")
            nursery.start_soon(pipe.control.subscribe_merged, "r", "BTC-USDT")
        assert pipe.statistics().subscribers == 0
        assert len(pipe.routing) == 0
        await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        assert pipe.statistics().fanout.unrouted == 1
    assert_balanced(pipe)


# -- versions travel with events ------------------------------------------------------


async def test_events_carry_the_routing_version_they_were_routed_under() -> None:
    early, late = Recorder(), Recorder()
    async with open_test_pipeline() as pipe:
        first = await pipe.subscribe("early", early)
        one = await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        second = await pipe.subscribe("late", late)
        two = await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()  # handled before the next change
        await pipe.control.subscribe("early", kinds=Kind.TRADE)
        three = await _publish(pipe)
        await trio.testing.wait_all_tasks_blocked()
        assert second == first + 1
        assert [(s.event_id, s.routing_version) for s in early.seen] == [
            (one, first),
            (two, second),
            (three, second + 1),
        ]
        assert [(s.event_id, s.routing_version) for s in late.seen] == [
            (two, second),
            (three, second + 1),
        ]
        assert pipe.statistics().routing_version == second + 1
    assert_balanced(pipe)


async def test_a_flip_skips_queued_market_data_of_an_older_version_but_not_critical_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    slow_seen, bystander = Recorder(), Recorder()

    async def slow(event: Event, ctx: ConsumerContext) -> None:
        slow_seen(event, ctx)
        await gate.wait()

    async with open_test_pipeline() as pipe:
        await pipe.subscribe("slow", slow, instruments="BTC-USDT")
        await pipe.subscribe("bystander", bystander, instruments="BTC-USDT")
        first = await _publish(pipe)  # held by the slow handler
        await trio.testing.wait_all_tasks_blocked()
        queued = [
            await _publish(pipe, Kind.EXEC_REPORT if n % 3 == 0 else Kind.TRADE, n=n)
            for n in range(9)
        ]
        await trio.testing.wait_all_tasks_blocked()
        critical_queued = queued[::3]

        reply = await pipe.control.subscribe("slow", instruments=["BTC-USDT", "ETH-USDT"])
        flipped = pipe.routing.version
        assert dict(reply.result.detail)["affected"] == "slow"
        after = [await _publish(pipe), await _publish(pipe, instrument="ETH-USDT")]
        gate.set()
        await pipe.wait_idle()

        assert slow_seen.ids() == [first, *critical_queued, *after]
        assert [s.routing_version for s in slow_seen.seen][-2:] == [flipped, flipped]
        slow_stats = _consumer(pipe, "slow")
        assert slow_stats.skipped_old_version == 6  # the queued trades
        assert slow_stats.min_version == flipped
        assert slow_stats.handled == len(slow_seen.seen)
        # The other consumer's route did not change: it skips nothing.
        assert bystander.ids() == [first, *queued, after[0]]
        assert _consumer(pipe, "bystander").skipped_old_version == 0
    assert_balanced(pipe)


# -- flips under load -------------------------------------------------------------------


@attrs.frozen
class LoadFigures:
    """What one run measured (BTC exec reports are routed to every consumer throughout)."""

    critical_sent: int
    critical_delivered: dict[str, int]
    market_data_handled: dict[str, int]
    market_data_skipped: dict[str, int]
    flips: int


ALWAYS = frozenset({Kind.TRADE, Kind.EXEC_REPORT})


async def _run_flips_under_load(seed: int) -> LoadFigures:
    """Publish trades and exec reports while routing flips, and check every delivery."""
    rng = random.Random(seed)
    events = 3000
    ids: dict[str, list[int]] = {"slow": [], "target": [], "steady": []}
    critical_btc: list[int] = []
    published: list[tuple[int, Kind, str]] = []
    publishing_done = trio.Event()
    floors_checked = 0

    def recorder(name: str) -> Callable[[Event, ConsumerContext], None]:
        def handler(event: Event, ctx: ConsumerContext) -> None:
            ids[name].append(event.event_id)

        return handler

    async def slow(event: Event, ctx: ConsumerContext) -> None:
        nonlocal floors_checked
        # The runtime decided to hand this over just now: an old version must be critical.
        if event.kind is Kind.TRADE:
            floors_checked += 1
            assert event.routing_version >= _consumer(pipe, "slow").min_version
        ids["slow"].append(event.event_id)
        await trio.sleep(0.0001)  # slow-ish: its lane holds queued events across flips

    async def publisher() -> None:
        for n in range(events):
            kind = Kind.EXEC_REPORT if rng.random() < 0.3 else Kind.TRADE
            instrument = rng.choice(["BTC-USDT", "ETH-USDT"])
            event_id = await _publish(pipe, kind, instrument, n)
            published.append((event_id, kind, instrument))
            if kind is Kind.EXEC_REPORT and instrument == "BTC-USDT":
                critical_btc.append(event_id)
            if n % 10 == 9:
                await trio.sleep(0.0002)
        publishing_done.set()

    async def flipper() -> int:
        flips = 0
        wide = False
        while not publishing_done.is_set():
            await trio.sleep(rng.uniform(0.001, 0.006))
            wide = not wide
            instruments = ["BTC-USDT", "ETH-USDT"] if wide else ["BTC-USDT"]
            extra = [Kind.TICKER] if rng.random() < 0.5 else []
            if rng.random() < 0.3:
                reply = await pipe.control.subscribe("target", kinds=[*ALWAYS, *extra])
            else:
                await pipe.control.stage_routing(
                    Subscribe(consumer_id="slow", kinds=ALWAYS, instruments=instruments),
                    Subscribe(consumer_id="target", kinds=[*ALWAYS, *extra]),
                )
                reply = await pipe.control.flip_routing()
            flips += reply.result.reason is None
        return flips

    flips = 0

    async def count_flips() -> None:
        nonlocal flips
        flips = await flipper()

    config = _config(lane_capacity=events, intake_capacity=64)
    async with open_test_pipeline(config) as pipe:
        await pipe.subscribe("slow", slow, kinds=ALWAYS, instruments="BTC-USDT")
        await pipe.subscribe("target", recorder("target"), kinds=ALWAYS)
        await pipe.subscribe("steady", recorder("steady"))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(publisher)
            nursery.start_soon(count_flips)
        await pipe.wait_idle()
        stats = pipe.statistics()

    assert flips >= 10
    assert floors_checked > 0
    by_id = {event_id: (kind, instrument) for event_id, kind, instrument in published}
    for name, seen in ids.items():
        assert len(seen) == len(set(seen)), f"{name} got an event twice"
        assert seen == sorted(seen), f"{name} got events out of order"
        btc_critical = [i for i in seen if by_id[i] == (Kind.EXEC_REPORT, "BTC-USDT")]
        assert btc_critical == critical_btc, f"{name} lost a critical event"
    # The steady consumer is never part of a flip: it gets every event, skips none.
    assert ids["steady"] == [event_id for event_id, _, _ in published]
    # Every exec report routed to "target" (any instrument, always subscribed) arrived.
    assert [i for i in ids["target"] if by_id[i][0] is Kind.EXEC_REPORT] == [
        i for i, kind, _ in published if kind is Kind.EXEC_REPORT
    ]
    lanes = {lane.consumer_id: lane for lane in stats.lanes}
    consumers = {c.consumer_id: c for c in stats.consumers}
    for name, lane in lanes.items():
        # Nothing dropped or merged by the lane: every skip is a routing-version skip.
        assert (lane.skipped, lane.coalesced, lane.overflowed, lane.depth) == (0, 0, 0, 0)
        consumer = consumers[name]
        assert lane.delivered == consumer.handled + consumer.skipped_old_version
        assert consumer.handled == len(ids[name])
        assert consumer.failed == 0
    assert sum(lane.delivered for lane in lanes.values()) == stats.fanout.deliveries
    assert consumers["steady"].skipped_old_version == 0
    assert consumers["slow"].skipped_old_version > 0
    assert_balanced(pipe)
    return LoadFigures(
        critical_sent=len(critical_btc),
        critical_delivered={
            name: sum(by_id[i] == (Kind.EXEC_REPORT, "BTC-USDT") for i in seen)
            for name, seen in ids.items()
        },
        market_data_handled={
            name: sum(by_id[i][0] is Kind.TRADE for i in seen) for name, seen in ids.items()
        },
        market_data_skipped={name: c.skipped_old_version for name, c in consumers.items()},
        flips=flips,
    )


@pytest.mark.parametrize("seed", range(3))
async def test_flips_under_load_deliver_every_critical_event_once_and_skip_only_old_data(
    seed: int, autojump_clock: trio.testing.MockClock
) -> None:
    figures = await _run_flips_under_load(seed)
    assert all(n == figures.critical_sent for n in figures.critical_delivered.values())
    print(f"flips under load, seed {seed}: {figures}")  # shown with -rP: the figures
