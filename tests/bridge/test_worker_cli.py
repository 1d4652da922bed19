"""``meltica-trio worker``: arguments, the consumer it loads, signals and statistics; configs."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import coredis
import orjson
import pytest
import trio
from bridge_helpers import SETTLE

from meltica_trio import ConfigError, Kind
from meltica_trio.bridge import (
    Attachment,
    BridgeConfig,
    MarketExport,
    StreamNames,
    WorkerConfig,
    load_handler,
)
from meltica_trio.bridge._cli import serve_until_signalled
from meltica_trio.cli import main
from meltica_trio.events import CRITICAL_KINDS


def test_load_handler_finds_functions_and_methods() -> None:
    assert load_handler("os.path:join") is os.path.join
    assert load_handler("pathlib:Path.cwd") == Path.cwd


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("os.path.join", "not module:function"),
        ("no_such_module_xyz:f", "cannot import"),
        ("os.path:nothing_here", "has no"),
        ("os:sep", "not callable"),
    ],
)
def test_load_handler_says_what_is_wrong(spec: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        load_handler(spec)


def test_the_worker_command_refuses_a_bad_consumer_or_group(
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["worker", "--redis", "redis://127.0.0.1:1/0", "--group", "g1"]
    assert main([*base, "--consumer", "nope"]) == 2
    assert "is not module:function" in capsys.readouterr().err
    assert main([*base[:-1], "bad group", "--consumer", "os.path:join"]) == 2
    assert "group" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["worker", "--group", "g1", "--consumer", "os.path:join"])  # no --redis


async def test_a_signal_closes_the_worker_and_writes_its_statistics(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    config = WorkerConfig(group="g1", url=redis_url, prefix=redis_prefix, read_block=0.05)
    stats = tmp_path / "stats.json"

    def ignore(event: object, ctx: object) -> None:
        return None

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_until_signalled, config, ignore, stats)
        names = StreamNames(redis_prefix)
        async with coredis.Redis.from_url(redis_url) as client:
            with trio.fail_after(SETTLE):
                while not await client.xlen(names.control):  # noqa: ASYNC110 (Redis state)
                    await trio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)
    document = orjson.loads(stats.read_bytes())
    assert document["consumer"]["consumer_id"] == "g1"
    assert document["link"]["up"] is True


def test_configs_refuse_bad_values() -> None:
    with pytest.raises(ConfigError, match="group"):
        WorkerConfig(group="a:b")
    with pytest.raises(ConfigError, match="read_block"):
        BridgeConfig(read_block=0)
    with pytest.raises(ConfigError, match="in_flight"):
        WorkerConfig(group="g", in_flight=0)
    with pytest.raises(ConfigError, match="kinds"):
        Attachment(group="g", kinds=["no_such_kind"])


def test_filters_split_critical_kinds_from_market_data() -> None:
    assert Attachment(group="g").critical_kinds == CRITICAL_KINDS
    assert Attachment(group="g", kinds=["trade", "exec_report"]).critical_kinds == {
        Kind.EXEC_REPORT
    }
    assert MarketExport().market_kinds == frozenset(Kind) - CRITICAL_KINDS
    assert MarketExport(kinds=["trade", "book_status"]).market_kinds == {Kind.TRADE}
    assert MarketExport(kinds=[]).market_kinds == frozenset()
    worker = WorkerConfig(group="g", instruments=["BTC-USDT"], kinds=["trade"])
    assert worker.wants("any", "BTC-USDT", Kind.TRADE)
    assert not worker.wants("any", "ETH-USDT", Kind.TRADE)
    assert not worker.wants("any", "BTC-USDT", Kind.TICKER)
    assert worker.attachment == Attachment(group="g", instruments=["BTC-USDT"], kinds=["trade"])
