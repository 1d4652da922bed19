"""Every program in examples/ runs on its own, in its short mode, and does what it says.

Each runs as a subprocess (``python examples/NAME.py ...``), the way a reader runs it,
against the simulated venue on localhost or a shared capture. The Redis example skips
with the reason when no Redis answers at 127.0.0.1:6379, unless MELTICA_REQUIRE_REDIS=1
(as in CI), which makes that a failure.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import coredis
import pytest
import trio
import trio.testing

from meltica_trio import Kind, MergeRule, Pipeline, Ticker
from meltica_trio.testing import assert_balanced, open_test_pipeline

ROOT: Final = Path(__file__).resolve().parents[1]
EXAMPLES: Final = ROOT / "examples"
RUN_TIMEOUT: Final = 50.0
"""Seconds an example may take; the per-test timeout is 60."""
REDIS_URL: Final = "redis://127.0.0.1:6379/0"

sys.path.insert(0, str(EXAMPLES))  # examples/ is not a package
from order_strategy import SpreadTaker  # noqa: E402


def run_example(name: str, *args: str) -> str:
    """Run ``examples/<name>`` with ``args``; its stdout, after checking it exited 0."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def number(pattern: str, text: str) -> int:
    """The integer the first group of ``pattern`` captures in ``text``."""
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in:\n{text}"
    return int(found.group(1))


def test_every_example_is_tested_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    for example in sorted(EXAMPLES.glob("*.py")):
        assert f'"{example.name}"' in source, f"{example.name} has no test"


def test_minimal_consumer_prints_trades_from_the_simulated_venue() -> None:
    out = run_example("minimal_consumer.py", "--seconds", "2")
    assert re.search(r"^printer: BTC-USDT (buy|sell) [0-9.]+ @ [0-9.]+$", out, re.MULTILINE)
    assert number(r"printer handled (\d+) events, 0 failed", out) > 0


def test_merged_view_prints_the_consolidated_top_of_two_venues() -> None:
    out = run_example("merged_view.py", "--seconds", "2")
    assert re.search(r"bid [0-9.]+ x [0-9.]+ on sim-[ab], ask [0-9.]+ x [0-9.]+ on sim-[ab]", out)
    views = number(r"(\d+) merged views", out)
    assert views > 0
    assert number(r"emitted (\d+)", out) == views


def test_order_strategy_is_refused_while_its_switch_is_off_then_trades() -> None:
    out = run_example("order_strategy.py", "--seconds", "20")
    first_refusal = out.index("refused: trading switch is off for consumer 'taker'")
    assert out.index("operator: trading switch on for taker (True)") > first_refusal
    decided = number(r"orders: (\d+) decided", out)
    refused = number(r"(\d+) refused,", out)
    submitted = number(r"(\d+) submitted", out)
    assert decided == 4
    assert refused >= 1
    assert submitted == decided - refused == number(r"(\d+) at venues", out)
    # Each order submitted was acknowledged and ended, and its owner heard both.
    assert number(r"(\d+) execution reports delivered", out) >= 2 * submitted
    assert len(re.findall(r"^taker: taker-\d+ on sim-[ab]: ack,", out, re.MULTILINE)) == submitted


def test_replaying_the_shared_binance_capture_ends_with_every_book_live() -> None:
    out = run_example("replay_capture.py", "--venue", "binance")
    books = re.findall(r"^  ([A-Z]+-[A-Z]+) +(\w+) +applied +\d+  gaps (\d+)", out, re.MULTILINE)
    assert books == [(i, "live", "0") for i in ("NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR")]


def test_replaying_the_shared_okx_capture_verifies_every_checksum() -> None:
    out = run_example("replay_capture.py", "--venue", "okx")
    ok = [int(n) for n in re.findall(r"checksums ok (\d+), failed 0", out)]
    assert sum(ok) == 290
    assert len(ok) == 3


def test_recording_the_simulated_venue_replays_to_live_books(tmp_path: Path) -> None:
    capture = tmp_path / "sim.jsonl"
    out = run_example("record_capture.py", "--out", str(capture), "--seconds", "1")
    books = re.findall(r"^  ([A-Z]+-[A-Z]+) +(\w+) +applied +\d+  gaps (\d+)", out, re.MULTILINE)
    assert books == [("BTC-USDT", "live", "0"), ("ETH-USDT", "live", "0")]
    again = run_example("replay_capture.py", "--capture", str(capture))
    assert again.count(" live ") == 2


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own, its keys deleted afterwards."""
    if not _redis_answers():
        reason = "no Redis answers at 127.0.0.1:6379"
        if os.environ.get("MELTICA_REQUIRE_REDIS") == "1":
            pytest.fail(f"{reason}, and MELTICA_REQUIRE_REDIS=1 forbids skipping", pytrace=False)
        pytest.skip(f"{reason} (set MELTICA_REQUIRE_REDIS=1 to make this a failure)")
    prefix = f"mt-example-{uuid.uuid4().hex[:12]}"
    yield prefix
    async with coredis.Redis.from_url(REDIS_URL) as client:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(keys)


async def test_remote_worker_trades_through_redis(redis_prefix: str) -> None:
    command = [sys.executable, str(EXAMPLES / "remote_worker.py")]
    with trio.fail_after(RUN_TIMEOUT):
        done = await trio.run_process(
            [*command, "--seconds", "3", "--prefix", redis_prefix],
            cwd=ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert re.search(r"^worker: order remote-\d+ ack$", out, re.MULTILINE)
    assert number(r"worker: (\d+) trades", out) > 0
    assert "pipeline: remotes ['remote'], orders from workers 1, orders at the venue 1" in out


def test_remote_worker_without_redis_says_so() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "remote_worker.py"), "--redis", "redis://127.0.0.1:1/0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 1
    assert "no Redis answers at redis://127.0.0.1:1/0" in done.stderr


# --8<-- [start:offline-test]
TOP_RULE = MergeRule(
    name="top", instrument="BTC-USDT", kind=Kind.TICKER, providers=("a", "b"), window=1.0,
    max_count=2,
)  # fmt: skip


async def publish_tops(pipe: Pipeline, seq: int, quotes: dict[str, tuple[str, str]]) -> None:
    """One ticker per venue, (bid, ask): a window closed by count, so one merged view."""
    for provider, (bid, ask) in quotes.items():
        ticker = Ticker(bid_price=bid, bid_size="1", ask_price=ask, ask_size="1")
        event = pipe.new_event(
            kind=Kind.TICKER, provider=provider, instrument="BTC-USDT", seq=seq, payload=ticker
        )
        await pipe.publish(event)


async def test_spread_taker_trades_where_the_quote_is_best_once_its_switch_is_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    taker = SpreadTaker(every=1, max_orders=2)
    async with open_test_pipeline(merges=[TOP_RULE]) as pipe:
        await pipe.subscribe("taker", taker, kinds=[])
        await pipe.control.subscribe_merged("taker", "BTC-USDT")
        await publish_tops(pipe, 1, {"a": ("100.0", "100.6"), "b": ("99.9", "100.5")})
        with trio.fail_after(5):
            await taker.wait_until(lambda: len(taker.refused) == 1)
        assert taker.refused == ["trading switch is off for consumer 'taker'"]

        await pipe.control.set_trading_switch("taker", True)
        await publish_tops(pipe, 2, {"a": ("100.2", "100.6"), "b": ("100.1", "100.5")})
        with trio.fail_after(5):
            await taker.wait_until(lambda: len(taker.refused) == 2)
    assert_balanced(pipe)  # every envelope came back, exactly once
    # The switch let the sell through to the gateway, for the best bid's venue, "a";
    # this pipeline has no order client at all, so the gateway refused it.
    assert taker.refused[1] == "unknown provider 'a' (known: none)"
    assert taker.sent == 2


# --8<-- [end:offline-test]
