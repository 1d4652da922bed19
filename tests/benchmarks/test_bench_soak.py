"""The soak: sampled as it runs, judged on RSS growth after warm-up, plotted at the end."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from meltica_trio.benchmarks import SoakSample, run_soak
from meltica_trio.benchmarks._peers import find_peer
from meltica_trio.benchmarks._soak import slope
from meltica_trio.benchmarks._tape import BINANCE_CAPTURE, Tape, find_fixtures
from meltica_trio.cli import main


def test_soak_samples_the_load_and_judges_growth_after_warm_up() -> None:
    seen: list[SoakSample] = []
    tape = Tape.from_capture(find_fixtures() / BINANCE_CAPTURE)

    verdict, samples = run_soak(50_000, tape, samples=10, on_sample=seen.append)

    assert samples == seen
    assert 5 <= len(samples) <= 20
    assert [s.deliveries for s in samples] == sorted(s.deliveries for s in samples)
    assert verdict.deliveries == 50_000
    assert verdict.warmup_deliveries == 5_000
    assert verdict.passed is (verdict.rss_growth_bytes <= verdict.goal_bytes)
    assert verdict.rss_growth_bytes == verdict.rss_end_bytes - verdict.rss_warm_bytes
    # Every burst is in flight when sampled, and nothing is ever dropped or left over.
    assert all(0 < s.pool_in_use <= verdict.pool_capacity for s in samples)
    assert all(s.lane_high_water <= 256 for s in samples)
    assert all(s.gc_collections[0] >= 0 for s in samples)


def test_soak_command_writes_verdict_samples_and_plot(tmp_path: Path) -> None:
    report_path, plot_path = tmp_path / "soak.json", tmp_path / "soak.png"

    code = main(
        [
            "soak",
            "--deliveries",
            "30000",
            "--samples",
            "8",
            "--json",
            str(report_path),
            "--plot",
            str(plot_path),
        ]
    )

    report = orjson.loads(report_path.read_bytes())
    assert code == (0 if report["verdict"]["passed"] else 1)
    assert report["verdict"]["deliveries"] == 30_000
    assert len(report["samples"]) >= 4
    if find_peer("matplotlib").available:
        assert plot_path.read_bytes().startswith(b"\x89PNG")


def test_soak_command_refuses_a_run_too_small_to_judge(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["soak", "--deliveries", "100"]) == 2
    assert "--deliveries must be" in capsys.readouterr().out


def test_slope_is_the_least_squares_trend() -> None:
    assert slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx(2.0)
    assert slope([(1.0, 5.0)]) == 0.0
