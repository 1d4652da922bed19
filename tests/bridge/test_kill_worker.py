"""kill -9 of a worker process mid-stream: every ExecReport is processed exactly once."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import coredis
import trio
from bridge_helpers import SETTLE, bridge_config, publish_report

from meltica_trio.bridge import open_bridge
from meltica_trio.testing import assert_balanced, open_test_pipeline

HERE: Final = Path(__file__).resolve().parent
REPORTS: Final = 120
STALL_AFTER: Final = 5
CLAIM_IDLE: Final = 0.5


@asynccontextmanager
async def worker_process(
    url: str, prefix: str, name: str, *, stall_after: int = 0, go_key: str = ""
) -> AsyncIterator[trio.Process]:
    """``meltica-trio worker`` running ``bridge_workers:record``; SIGTERM (then wait) on exit.

    With ``go_key`` the process starts (and imports) at once but waits for that key.
    """
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "BRIDGE_TEST_REDIS": url,
        "BRIDGE_TEST_PREFIX": prefix,
        "BRIDGE_TEST_STALL_AFTER": str(stall_after),
        "BRIDGE_TEST_GO_KEY": go_key,
    }
    command = [
        sys.executable, "-m", "meltica_trio.cli", "worker",
        "--redis", url, "--prefix", prefix, "--group", "g1", "--name", name,
        "--consumer", "bridge_workers:record", "--kinds", "exec_report",
        "--in-flight", "16", "--claim-idle", str(CLAIM_IDLE), "--debug",
    ]  # fmt: skip
    process = await trio.lowlevel.open_process(command, env=env)
    try:
        yield process
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            with trio.move_on_after(SETTLE):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _until(predicate: object, what: str) -> None:
    """Poll another process' progress in Redis (no event crosses processes)."""
    with trio.fail_after(SETTLE * 2):
        while not await predicate():  # type: ignore[operator]  # noqa: ASYNC110
            await trio.sleep(0.02)


async def test_kill_9_mid_stream_every_report_processed_exactly_once(
    redis_url: str, redis_prefix: str
) -> None:
    processed, by, stalled, go = (
        f"{redis_prefix}:test:{key}" for key in ("processed", "by", "stalled", "go")
    )
    config = bridge_config(redis_url, redis_prefix)
    async with (
        coredis.Redis.from_url(redis_url) as client,
        open_test_pipeline() as pipe,
        open_bridge(pipe, config) as bridge,
        worker_process(redis_url, redis_prefix, "victim", stall_after=STALL_AFTER) as victim,
        # Started now (imports take a while), reading only once told to.
        worker_process(redis_url, redis_prefix, "survivor-1", go_key=go),
        worker_process(redis_url, redis_prefix, "survivor-2", go_key=go),
    ):
        with trio.fail_after(SETTLE):
            await bridge.wait_attached("g1")
        for n in range(1, REPORTS // 2 + 1):
            await publish_report(pipe, n)

        async def victim_stuck() -> bool:
            return await client.get(stalled) == str(victim.pid).encode()

        await _until(victim_stuck, "the victim to stall inside its function")
        await client.set(go, b"1")
        os.kill(victim.pid, signal.SIGKILL)  # mid-stream: it holds unacknowledged entries
        await victim.wait()
        for n in range(REPORTS // 2 + 1, REPORTS + 1):
            await publish_report(pipe, n)

        async def all_processed() -> bool:
            pending = await client.xpending(f"{redis_prefix}:crit:g1", "g1")
            return await client.hlen(processed) == REPORTS and pending.pending == 0

        await _until(all_processed, "every report to be processed and acknowledged")
        counts = await client.hgetall(processed)
        per_process = await client.hgetall(by)
        assert victim.returncode == -signal.SIGKILL
    assert_balanced(pipe)
    assert {key.decode() for key in counts} == {f"x-{n}" for n in range(1, REPORTS + 1)}
    assert set(counts.values()) == {b"1"}, {k: v for k, v in counts.items() if v != b"1"}
    # The victim finished STALL_AFTER reports; the survivors did the rest, including
    # the entries the victim held when it died (claimed after CLAIM_IDLE).
    assert int(per_process.pop(str(victim.pid).encode())) == STALL_AFTER
    assert sum(int(v) for v in per_process.values()) == REPORTS - STALL_AFTER
    assert len(per_process) == 2
