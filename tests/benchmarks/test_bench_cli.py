"""``meltica-trio bench --quick`` end to end, and the ``bench/`` scripts it grew out of.

The quick suite runs here as CI's smoke test: in a child process, as a user runs it, with
no thresholds (figures on a shared machine are information, not pass/fail).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from meltica_trio.benchmarks import FAMILIES
from meltica_trio.benchmarks._peers import find_peer

ROOT = Path(__file__).parents[2]
QUICK_BUDGET_S = 55
"""The quick suite's promise is under a minute; the test's own timeout is 60 s."""


def run(*argv: str, timeout: float = QUICK_BUDGET_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_quick_bench_runs_every_family_and_writes_report_and_plots(tmp_path: Path) -> None:
    report_path, plots = tmp_path / "report.json", tmp_path / "plots"
    command = [sys.executable, "-m", "meltica_trio.cli", "bench", "--quick"]

    done = run(*command, "--json", str(report_path), "--plots", str(plots))

    assert done.returncode == 0, done.stderr
    report = orjson.loads(report_path.read_bytes())
    assert report["families"] == list(FAMILIES)
    assert report["quick"] is True
    rates = {row["subscribers"]: row for row in report["summary"]["rates"]}
    assert set(rates) == {"1", "10", "50"}
    anchored = "ours / nautilus_trader MessageBus" in rates["10"]
    assert anchored is find_peer("nautilus_trader").available
    assert "Burst deliveries/s" in done.stdout
    if find_peer("matplotlib").available:
        assert sorted(p.name for p in plots.iterdir()) == [
            "deliveries_vs_subscribers.png",
            "latency_distribution.png",
        ]


def test_the_bench_scripts_still_run_their_family(tmp_path: Path) -> None:
    pipeline_json = tmp_path / "pipeline.json"
    pipeline = run(
        sys.executable,
        "bench/bench_pipeline.py",
        "--only",
        "memory",
        "--memory-deliveries",
        "20000",
        "--duration",
        "0.1",
        "--json",
        str(pipeline_json),
        timeout=30,
    )
    lifecycle_json = tmp_path / "lifecycle.json"
    lifecycle = run(
        sys.executable,
        "bench/bench_lifecycle.py",
        "--n",
        "1000",
        "--repeats",
        "1",
        "--gc-n",
        "10240",
        "--output",
        str(lifecycle_json),
        timeout=30,
    )

    assert pipeline.returncode == 0, pipeline.stderr
    assert "[memory]" in pipeline.stdout
    assert orjson.loads(pipeline_json.read_bytes())["benchmarks"]["memory"]["bursts"]
    assert lifecycle.returncode == 0, lifecycle.stderr
    assert "pooled dup+recycle" in lifecycle.stdout
    assert len(orjson.loads(lifecycle_json.read_bytes())["gc"]) == 4
