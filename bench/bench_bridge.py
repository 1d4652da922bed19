"""Events/s and latency through the Redis bridge, with 1 and 2 worker processes.

Run with ``.venv/bin/python bench/bench_bridge.py [--quick]`` against the Redis at
``--redis`` (default ``redis://127.0.0.1:6379/0``; every key lives under a fresh
prefix, deleted afterwards). It prints a table and writes ``bench/results/bridge.json``.

What runs: a pipeline (this process) with the bridge, and N ``meltica-trio worker``
processes of one group running a trivial consumer (:func:`consume`). Execution
reports are published into the pipeline; the bridge exports them to the group's
critical stream; the workers read them through the consumer group, apply each once
(apply marks), run the function in the consumer runtime and acknowledge it. That is
the path that scales with workers (market data is read by every worker, not shared).

- ``burst``: ``--events`` reports published as fast as the pipeline takes them; the
  rate is events over the time from the first publish until Redis says every entry
  was delivered and acknowledged (XINFO GROUPS: lag 0, nothing pending).
- ``paced``: ``--rate`` reports/s for ``--seconds`` on the real clock; latency is the
  workers' own consumer-runtime ``delivery`` histogram: wall clock from the pipeline's
  ingest stamp to the function's start in the worker (same host, same clock). With two
  workers the higher p99 of the two is reported.

Each case (scenario x workers) runs ``--repeats`` times with fresh workers; figures are
the median with min-max. The machine is shared: the 1-minute load average before and
after each case is recorded and printed, and with pipeline, Redis and workers on the
same cores the figures measure this machine, not the bridge alone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Final

import coredis
import trio

from meltica_trio import Event, ExecReport, Kind, OrderState, PipelineConfig, Side, open_pipeline
from meltica_trio.bridge import Attachment, BridgeConfig, open_bridge
from meltica_trio.consumers import ConsumerContext

HERE: Final = Path(__file__).resolve().parent
RESULTS: Final = HERE / "results" / "bridge.json"
GROUP: Final = "bench"
READY_TIMEOUT: Final = 60.0
"""Seconds workers may take to start (imports on a busy machine) and to finish a case."""


def consume(event: Event, ctx: ConsumerContext) -> None:
    """The workers' consumer: does nothing, so the figures are the bridge's."""


def _report(n: int) -> ExecReport:
    return ExecReport(
        exec_id=f"b-{n}",
        consumer_id=GROUP,
        client_order_id=f"o-{n}",
        venue_order_id=str(n),
        side=Side.BUY,
        price="100.0",
        quantity="1",
        state=OrderState.FILLED,
        filled="1",
        remaining="0",
    )


def _load() -> float:
    return os.getloadavg()[0]


@asynccontextmanager
async def _workers(
    count: int, url: str, prefix: str, stats_dir: Path
) -> AsyncIterator[list[Path]]:
    """``count`` worker processes; SIGTERM on exit, after which their statistics are written."""
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    }
    paths = [stats_dir / f"worker-{i}.json" for i in range(count)]
    processes = []
    try:
        for i, path in enumerate(paths):
            command = [
                sys.executable, "-m", "meltica_trio.cli", "worker",
                "--redis", url, "--prefix", prefix, "--group", GROUP, "--name", f"w{i}",
                "--consumer", "bench_bridge:consume", "--kinds", "exec_report",
                "--in-flight", "256", "--stats-json", str(path),
            ]  # fmt: skip
            processes.append(await trio.lowlevel.open_process(command, env=env))
        yield paths
    finally:
        with trio.CancelScope(shield=True):
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                await process.wait()


async def _wait_workers(client: coredis.Redis[bytes], control: str, count: int) -> None:
    """Until ``count`` workers have attached (each appends one control entry as it starts).

    Polled: they are other processes. (XINFO CONSUMERS would not do: Redis 7.0 lists a
    consumer only once it has been given an entry.)
    """
    with trio.fail_after(READY_TIMEOUT):
        while await client.xlen(control) < count:  # noqa: ASYNC110 (other processes)
            await trio.sleep(0.02)


async def _wait_done(client: coredis.Redis[bytes], stream: str, events: int) -> float:
    """Until every entry was delivered and acknowledged; returns when (trio clock)."""
    with trio.fail_after(READY_TIMEOUT):
        while True:
            (group,) = await client.xinfo_groups(stream)
            if (group[b"entries-read"] or 0) >= events and group[b"pending"] == 0:
                return trio.current_time()
            await trio.sleep(0.002)


async def _publish(pipe: Any, first: int, count: int, rate: float | None) -> float:
    """Publish reports ``first..first+count-1``; paced at ``rate``/s when given."""
    start = trio.current_time()
    for i in range(count):
        if rate is not None:
            await trio.sleep_until(start + i / rate)
        event = pipe.new_event(
            kind=Kind.EXEC_REPORT,
            provider="sim",
            instrument="BTC-USDT",
            payload=_report(first + i),
        )
        await pipe.publish(event)
    return start


async def run_case(args: argparse.Namespace, scenario: str, workers: int) -> dict[str, Any]:
    """One pipeline, bridge and ``workers`` worker processes; one scenario."""
    prefix = f"mt-bench-{uuid.uuid4().hex[:10]}"
    stream = f"{prefix}:crit:{GROUP}"
    config = BridgeConfig(
        url=args.redis,
        prefix=prefix,
        market=None,
        remotes=(Attachment(group=GROUP, kinds=["exec_report"]),),
    )
    load_before = _load()
    events = args.events if scenario == "burst" else int(args.rate * args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        async with coredis.Redis.from_url(args.redis) as client:
            try:
                async with AsyncExitStack() as stack:
                    pipe = await stack.enter_async_context(
                        open_pipeline(PipelineConfig(pool_capacity=2 * events + 1024))
                    )
                    bridge = await stack.enter_async_context(open_bridge(pipe, config))
                    with trio.fail_after(READY_TIMEOUT):
                        await bridge.wait_attached(GROUP)
                    paths = await stack.enter_async_context(
                        _workers(workers, args.redis, prefix, Path(tmp))
                    )
                    await _wait_workers(client, f"{prefix}:control", workers)
                    await _publish(pipe, 0, 1, None)  # warm-up: the path is open end to end
                    await _wait_done(client, stream, 1)
                    cpu = time.process_time()
                    rate = None if scenario == "burst" else args.rate
                    start = await _publish(pipe, 1, events, rate)
                    done = await _wait_done(client, stream, events + 1)
                    pipeline_cpu = time.process_time() - cpu
                    exported = bridge.statistics().exporter
                # The workers have written their statistics on SIGTERM.
                worker_stats = [json.loads(path.read_text()) for path in paths]
            finally:
                keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
                if keys:
                    await client.delete(keys)
    delivery = [w["consumer"]["delivery"] for w in worker_stats]
    return {
        "scenario": scenario,
        "workers": workers,
        "events": events,
        "seconds": done - start,
        "events_per_s": events / (done - start),
        "p50_ms": max(d["p50_ns"] for d in delivery) / 1e6,
        "p99_ms": max(d["p99_ns"] for d in delivery) / 1e6,
        "max_ms": max(d["max_ns"] for d in delivery) / 1e6,
        "per_worker_handled": [w["consumer"]["handled"] for w in worker_stats],
        "duplicates": sum(w["critical"]["duplicates"] for w in worker_stats),
        "critical_waits": exported.critical_waits,
        "pipeline_cpu_share": pipeline_cpu / (done - start),
        "load_before": load_before,
        "load_after": _load(),
    }


def _median(runs: list[dict[str, Any]], key: str) -> tuple[float, float, float]:
    values = [run[key] for run in runs]
    return statistics.median(values), min(values), max(values)


def _print(table: list[dict[str, Any]]) -> None:
    print(
        f"{'scenario':<8} {'workers':>7} {'events':>7} {'events/s (min-max)':>26} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'pipe CPU':>8} {'load 1m':>13}"
    )
    for row in table:
        rate, low, high = row["events_per_s"]
        print(
            f"{row['scenario']:<8} {row['workers']:>7} {row['events']:>7} "
            f"{rate:>10,.0f} ({low:,.0f}-{high:,.0f}) "
            f"{row['p50_ms'][0]:>8.2f} {row['p99_ms'][0]:>8.2f} "
            f"{row['pipeline_cpu_share'][0]:>7.0%} "
            f"{row['load'][0]:>5.2f}-{row['load'][1]:<5.2f}"
        )


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Every case, each ``--repeats`` times, interleaved so drift hits them all alike."""
    cases = [(scenario, workers) for scenario in ("burst", "paced") for workers in (1, 2)]
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {case: [] for case in cases}
    for repeat in range(args.repeats):
        for scenario, workers in cases:
            run = await run_case(args, scenario, workers)
            runs[scenario, workers].append(run)
            print(
                f"  [{repeat + 1}/{args.repeats}] {scenario} x{workers}: "
                f"{run['events_per_s']:,.0f} events/s, p99 {run['p99_ms']:.2f} ms, "
                f"load {run['load_before']:.2f}",
                flush=True,
            )
    table = []
    for (scenario, workers), case_runs in runs.items():
        table.append(
            {
                "scenario": scenario,
                "workers": workers,
                "events": case_runs[0]["events"],
                **{
                    key: _median(case_runs, key)
                    for key in ("events_per_s", "p50_ms", "p99_ms", "pipeline_cpu_share")
                },
                "load": (
                    min(r["load_before"] for r in case_runs),
                    max(r["load_after"] for r in case_runs),
                ),
            }
        )
    return {"table": table, "runs": {f"{s}x{w}": r for (s, w), r in runs.items()}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run (about a minute)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
    parser.add_argument("--events", type=int, default=20_000, help="reports per burst")
    parser.add_argument("--rate", type=float, default=2000.0, help="paced reports/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="paced duration")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case")
    parser.add_argument("--json", type=Path, default=RESULTS, help="JSON results path")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.rate, args.seconds, args.repeats = 3000, 1000.0, 2.0, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"bridge benchmark: {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)
    report = trio.run(main_async, args)
    print()
    _print(report["table"])
    report["config"] = vars(args) | {"json": str(args.json)}
    report["machine"] = {"cpus": os.cpu_count(), "load_end": os.getloadavg()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
