"""What the readers do with entries that are malformed, repeated, failing or left by the dead."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import coredis
import trio
from bridge_helpers import (
    SETTLE,
    Recorder,
    bridge_config,
    exec_report,
    publish_report,
    publish_trade,
    worker_config,
)

from meltica_trio import Event, ExecReport, Kind, Side
from meltica_trio.bridge import StreamNames, open_bridge, open_worker
from meltica_trio.bridge._wire import command_fields, critical_fields
from meltica_trio.bus import SubmitOrder
from meltica_trio.consumers import ConsumerContext
from meltica_trio.testing import assert_balanced, open_test_pipeline


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll Redis for what other tasks' I/O will eventually write there."""
    with trio.fail_after(SETTLE):
        while not await check():  # noqa: ASYNC110
            await trio.sleep(0.02)


def _report_event(n: int) -> Event:
    return Event(event_id=n, kind=Kind.EXEC_REPORT, provider="sim", payload=exec_report(n))


async def test_malformed_entries_go_to_the_dlq_and_the_streams_keep_flowing(
    redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    recorder = Recorder()
    async with (
        coredis.Redis.from_url(redis_url) as client,
        open_test_pipeline() as pipe,
        open_bridge(pipe, bridge_config(redis_url, redis_prefix)) as bridge,
        open_worker(worker_config(redis_url, redis_prefix), recorder) as worker,
    ):
        await bridge.wait_attached("g1")
        await publish_report(pipe, 1)
        await publish_trade(pipe, 1)
        await recorder.wait_for(Kind.EXEC_REPORT, 1)
        await recorder.wait_for(Kind.TRADE, 1)
        critical = names.critical("g1")
        market = names.market("sim", "BTC-USDT", Kind.TRADE)
        report = critical_fields(_report_event(99), "exec:x-99")
        for fields in (
            {b"e": b"not json", b"id": b"a-1"},
            {b"x": b"1"},
            {b"e": report[b"e"]},  # no apply id
        ):
            await client.xadd(critical, fields)
        await client.xadd(market, {b"e": b"{}"})
        await client.xadd(market, {b"e": report[b"e"]})  # a critical kind on market data
        foreign = SubmitOrder(
            consumer_id="intruder",
            client_order_id="i-1",
            provider="sim",
            instrument="BTC-USDT",
            side=Side.BUY,
            quantity="1",
        )
        await client.xadd(names.control, command_fields(foreign))
        await client.xadd(names.control, {b"t": b"command", b"b": b'{"command": "flip_routing"}'})
        await client.xadd(names.control, {b"t": b"bogus", b"b": b"{}"})
        await publish_report(pipe, 2)
        await publish_trade(pipe, 2)
        reports = await recorder.wait_for(Kind.EXEC_REPORT, 2)
        trades = await recorder.wait_for(Kind.TRADE, 2)

        async def dead_lettered() -> bool:
            mine, bridges = (
                await client.xlen(names.dlq("g1")),
                await client.xlen(names.dlq("bridge")),
            )
            return (mine, bridges) == (5, 3)

        await _until(dead_lettered)
        letters = await client.xrange(names.dlq("bridge"))
        pending = await client.xpending(critical, "g1")
        control_pending = await client.xpending(names.control, "bridge")
        stats = worker.statistics()
        control = bridge.statistics().control
    assert_balanced(pipe)
    assert [r.exec_id for r in reports] == ["x-1", "x-2"]
    assert [t.trade_id for t in trades] == ["1", "2"]
    assert (stats.critical.malformed, stats.market.malformed) == (3, 2)
    assert (control.malformed, control.foreign) == (2, 1)
    reasons = [dict(entry.field_values)[b"reason"] for entry in letters]
    assert reasons == [b"not an attached remote consumer", b"malformed", b"malformed"]
    assert (pending.pending, control_pending.pending) == (0, 0)


async def test_a_repeated_entry_is_applied_once(redis_url: str, redis_prefix: str) -> None:
    """An exporter that resends after a lost reply writes an event twice: applied once."""
    names = StreamNames(redis_prefix)
    recorder = Recorder()
    async with (
        coredis.Redis.from_url(redis_url) as client,
        open_worker(worker_config(redis_url, redis_prefix), recorder) as worker,
    ):
        for n in (1, 1, 2, 2, 2, 3):
            await client.xadd(
                names.critical("g1"), critical_fields(_report_event(n), f"exec:x-{n}")
            )
        await recorder.wait_for(Kind.EXEC_REPORT, 3)

        async def settled() -> bool:
            return worker.statistics().critical.acknowledged == 6

        await _until(settled)
        stats = worker.statistics().critical
    assert [r.exec_id for r in recorder.of(Kind.EXEC_REPORT)] == ["x-1", "x-2", "x-3"]
    assert (stats.applied, stats.duplicates) == (3, 3)


async def test_entries_of_a_dead_worker_are_claimed_and_applied_once(
    redis_url: str, redis_prefix: str
) -> None:
    """A worker died holding entries, one of them begun: another takes them all over."""
    names = StreamNames(redis_prefix)
    critical = names.critical("g1")
    recorder = Recorder()
    async with coredis.Redis.from_url(redis_url) as client:
        await client.xgroup_create(critical, "g1", identifier="0", mkstream=True)
        for n in (1, 2, 3):
            await client.xadd(critical, critical_fields(_report_event(n), f"exec:x-{n}"))
        taken = await client.xreadgroup("g1", "dead", {critical: ">"}, count=2)
        first = taken[critical.encode()][0].identifier
        # It had begun x-1 (its function was running) when it died.
        await client.set(names.applied("g1", "exec:x-1"), b"run:dead|" + first)
        config = worker_config(redis_url, redis_prefix, claim_idle=0.3)
        async with open_worker(config, recorder) as worker:
            reports = await recorder.wait_for(Kind.EXEC_REPORT, 3)

            async def acknowledged() -> bool:
                return (await client.xpending(critical, "g1")).pending == 0

            await _until(acknowledged)
            stats = worker.statistics()
        marks = [await client.get(names.applied("g1", f"exec:x-{n}")) for n in (1, 2, 3)]
    assert sorted(r.exec_id for r in reports) == ["x-1", "x-2", "x-3"]
    assert stats.critical_group.claimed == 2
    assert stats.critical.applied == 3
    assert marks == [b"done"] * 3


async def test_a_failing_function_is_isolated_and_its_dead_letter_shipped(
    redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    seen: list[str] = []

    def fragile(event: Event, ctx: ConsumerContext) -> None:
        assert isinstance(event.payload, ExecReport)
        seen.append(event.payload.exec_id)
        if event.payload.exec_id == "x-2":
            raise RuntimeError("strategy bug")

    async with (
        coredis.Redis.from_url(redis_url) as client,
        open_worker(worker_config(redis_url, redis_prefix), fragile) as worker,
    ):
        for n in (1, 2, 3):
            await client.xadd(
                names.critical("g1"), critical_fields(_report_event(n), f"exec:x-{n}")
            )

        async def shipped() -> bool:
            return await client.xlen(names.dlq("g1")) == 1 and len(seen) == 3

        await _until(shipped)
        (letter,) = await client.xrange(names.dlq("g1"))
        stats = worker.statistics()
    fields = dict(letter.field_values)
    assert seen == ["x-1", "x-2", "x-3"]
    assert fields[b"reason"] == b"failed"
    assert fields[b"error"] == b"RuntimeError: strategy bug"
    assert (stats.consumer.failed, stats.dlq.recorded, stats.critical.failed) == (1, 1, 1)
    assert [letter.error for letter in worker.dlq.entries()] == ["RuntimeError: strategy bug"]
