"""Pipeline -> Redis -> worker, in one process: what arrives, in what order, and what is kept."""

from __future__ import annotations

import coredis
import trio
from bridge_helpers import (
    SETTLE,
    Recorder,
    bridge_config,
    publish_report,
    publish_status,
    publish_trade,
    worker_config,
)

from meltica_trio import Event, Kind, Ticker
from meltica_trio.bridge import StreamNames, open_bridge, open_worker
from meltica_trio.consumers import ConsumerContext
from meltica_trio.testing import assert_balanced, open_test_pipeline


async def test_critical_events_and_market_data_reach_a_worker_in_order(
    redis_url: str, redis_prefix: str
) -> None:
    recorder = Recorder()
    config = worker_config(redis_url, redis_prefix, instruments=["BTC-USDT"])
    async with (
        open_test_pipeline() as pipe,
        open_bridge(pipe, bridge_config(redis_url, redis_prefix)) as bridge,
        open_worker(config, recorder) as worker,
    ):
        with trio.fail_after(SETTLE):
            await bridge.wait_attached("g1")
        for n in range(1, 6):
            await publish_report(pipe, n)
            await publish_trade(pipe, n)
        await publish_status(pipe, 1)
        reports = await recorder.wait_for(Kind.EXEC_REPORT, 5)
        trades = await recorder.wait_for(Kind.TRADE, 5)
        await recorder.wait_for(Kind.BOOK_STATUS, 1)
        assert [r.exec_id for r in reports] == [f"x-{n}" for n in range(1, 6)]
        assert [t.trade_id for t in trades] == [str(n) for n in range(1, 6)]
        stats = worker.statistics()
        assert stats.critical.applied == 6
        assert stats.consumer.failed == 0
        exported = bridge.statistics().exporter
        assert exported.critical_written == 6
        assert exported.market_written == 5
        assert bridge.statistics().remotes == ("g1",)
    assert_balanced(pipe)
    assert not worker.recycler.leak_report()


async def test_streams_follow_the_documented_names_and_trimming(
    redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    recorder = Recorder()
    async with (
        open_test_pipeline() as pipe,
        open_bridge(pipe, bridge_config(redis_url, redis_prefix, market_maxlen=10)) as bridge,
        open_worker(worker_config(redis_url, redis_prefix), recorder),
    ):
        await bridge.wait_attached("g1")
        for n in range(1, 501):
            await publish_trade(pipe, n)
        for n in range(1, 4):
            await publish_report(pipe, n)
        await recorder.wait_for(Kind.EXEC_REPORT, 3)
        await bridge._exporter.wait_flushed()
        async with coredis.Redis.from_url(redis_url) as client:
            market = names.market("sim", "BTC-USDT", Kind.TRADE)
            with trio.fail_after(SETTLE):
                while await client.xlen(market) == 0:  # noqa: ASYNC110 (another process' writes)
                    await trio.sleep(0.01)
            # MAXLEN ~ trims whole macro nodes: about 10 kept, never all 500.
            assert 10 <= await client.xlen(market) < 500
            assert await client.smembers(names.topics) == {market.encode()}
            critical = names.critical("g1")
            # Acknowledged critical entries are trimmed, pending ones never.
            with trio.fail_after(SETTLE):
                while await client.xlen(critical):  # noqa: ASYNC110
                    await trio.sleep(0.05)
            assert bridge.statistics().trim.trimmed >= 3
            assert await client.hget(names.remotes, "g1") is not None


async def test_a_restarted_bridge_attaches_the_groups_attached_before(
    redis_url: str, redis_prefix: str
) -> None:
    recorder = Recorder()
    async with (
        open_test_pipeline() as pipe,
        open_bridge(pipe, bridge_config(redis_url, redis_prefix)) as bridge,
        open_worker(worker_config(redis_url, redis_prefix, kinds=["exec_report"]), recorder),
    ):
        await bridge.wait_attached("g1")
    # No worker now: the new pipeline learns g1 from Redis and exports its reports at once.
    async with (
        open_test_pipeline() as pipe,
        open_bridge(pipe, bridge_config(redis_url, redis_prefix)) as bridge,
    ):
        with trio.fail_after(SETTLE):
            await bridge.wait_attached("g1")
        await publish_report(pipe, 7)
        await pipe.wait_idle()  # the exporting consumer has buffered it
        await bridge._exporter.wait_flushed()
        assert bridge.statistics().exporter.critical_written == 1
    async with open_worker(worker_config(redis_url, redis_prefix), recorder):
        (report,) = await recorder.wait_for(Kind.EXEC_REPORT, 1)
    assert report.exec_id == "x-7"


async def test_an_attachment_the_pipeline_refuses_is_dead_lettered(
    redis_url: str, redis_prefix: str
) -> None:
    names = StreamNames(redis_prefix)
    config = worker_config(redis_url, redis_prefix, instruments=["ETH-USDT"])
    async with (
        coredis.Redis.from_url(redis_url) as client,
        open_test_pipeline(instruments=("BTC-USDT",)) as pipe,
        open_bridge(pipe, bridge_config(redis_url, redis_prefix)) as bridge,
        open_worker(config, Recorder()),
    ):
        with trio.fail_after(SETTLE):
            while not await client.xlen(names.dlq("bridge")):  # noqa: ASYNC110 (Redis state)
                await trio.sleep(0.01)
        (letter,) = await client.xrange(names.dlq("bridge"))
        control = bridge.statistics().control
    assert dict(letter.field_values)[b"reason"] == b"attachment refused"
    assert b"unknown instrument 'ETH-USDT'" in dict(letter.field_values)[b"error"]
    assert (control.attachments, control.refused_attachments) == (1, 1)
    assert bridge.statistics().remotes == ()


async def test_an_async_consumer_starts_with_the_newest_ticker_of_known_topics(
    redis_url: str, redis_prefix: str
) -> None:
    seen: list[tuple[Kind, str]] = []
    changed = trio.Event()

    async def consumer(event: Event, ctx: ConsumerContext) -> None:
        await trio.lowlevel.checkpoint()
        payload = event.payload
        label = payload.last_price if isinstance(payload, Ticker) else payload.trade_id  # type: ignore[union-attr]
        seen.append((event.kind, label or ""))
        changed.set()

    async with (
        open_test_pipeline() as pipe,
        open_bridge(pipe, bridge_config(redis_url, redis_prefix)),
    ):
        for n in (1, 2, 3):
            await publish_trade(pipe, n)
            ticker = Ticker(
                bid_price="1", bid_size="1", ask_price="2", ask_size="1", last_price=f"{n}"
            )
            await pipe.publish(
                pipe.new_event(
                    kind=Kind.TICKER, provider="sim", instrument="BTC-USDT", payload=ticker
                )
            )
        ticker_stream = StreamNames(redis_prefix).market("sim", "BTC-USDT", Kind.TICKER)
        async with coredis.Redis.from_url(redis_url) as client:
            # Tickers are LATEST: the exporter's lane may coalesce them; the last one counts.
            with trio.fail_after(SETTLE):
                while True:
                    newest = await client.xrevrange(ticker_stream, count=1)
                    if newest and b'"last_price":"3"' in dict(newest[0].field_values)[b"e"]:
                        break
                    await trio.sleep(0.01)
        async with open_worker(worker_config(redis_url, redis_prefix), consumer) as worker:
            with trio.fail_after(SETTLE):
                while not seen:
                    await changed.wait()
                    changed = trio.Event()
            await publish_trade(pipe, 4)
            with trio.fail_after(SETTLE):
                while len(seen) < 2:
                    await changed.wait()
                    changed = trio.Event()
            topics = worker.statistics().market.topics
    # The newest ticker (a LATEST kind) is delivered at once; old trades are not replayed.
    assert seen == [(Kind.TICKER, "3"), (Kind.TRADE, "4")]
    assert topics == 2
