"""The benchmark suite: every family runs, peers are optional, reports and plots are written.

These run the suite in-process at a tiny scale (a few thousand deliveries, one repeat), so
they check what the suite does, never how fast anything is: there are no thresholds.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from meltica_trio.benchmarks import (
    FAMILIES,
    SuiteConfig,
    _books,
    _data_plane,
    _lifecycle,
    run_suite,
)
from meltica_trio.benchmarks._peers import find_peer
from meltica_trio.benchmarks._plots import plot_suite
from meltica_trio.benchmarks._suite import busy_note, parse_families
from meltica_trio.benchmarks._summary import rate_table, rows_table, summarise_suite
from meltica_trio.cli import main

HAVE_NAUTILUS = find_peer("nautilus_trader").available
HAVE_ORDER_BOOK = find_peer("order_book").available
HAVE_MATPLOTLIB = find_peer("matplotlib").available


def tiny(**overrides: object) -> SuiteConfig:
    """Every family at a scale that takes a second or two."""
    return SuiteConfig(
        quick=True,
        lifecycle=_lifecycle.settings(quick=True, n=2_000, repeats=1, gc_n=20_480),
        data_plane=_data_plane.settings(
            quick=True,
            repeats=1,
            duration=0.1,
            deliveries=2_000,
            memory_deliveries=20_000,
            subscribers=(1, 2),
            parallel_events=2,
        ),
        books=_books.settings(quick=True, rounds=1, repeats=1),
        **overrides,  # type: ignore[arg-type]
    )


def quiet() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=160), out


def test_every_family_reports_and_the_summary_compares_with_each_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    console, out = quiet()
    report = run_suite(tiny(), console)
    summary = summarise_suite(report["results"])

    assert list(report["results"]) == list(FAMILIES)
    burst = report["results"]["burst"]["results"]
    assert set(burst) == {"1", "2"}
    for row in burst.values():
        assert row["pipeline"]["deliveries"].median > 0
        assert "pipeline_vs_sequential" in row
        assert ("pipeline_vs_nautilus" in row) is HAVE_NAUTILUS
    isolation = report["results"]["isolation"]["results"]
    assert set(isolation) == {"pipeline", "raw", "sequential"}
    assert ("vs_cryptofeed" in report["results"]["books"]) is HAVE_ORDER_BOOK
    assert [row["subscribers"] for row in summary["rates"]] == ["1", "2"]
    assert {row["family"] for row in summary["rows"]} == set(FAMILIES) - {"burst"}
    # The families' own tables went to stdout, the suite's lines to its console.
    assert "[burst]" in capsys.readouterr().out
    assert "peer nautilus_trader" in out.getvalue()
    Console(file=io.StringIO(), width=160).print(rate_table(summary["rates"]))
    Console(file=io.StringIO(), width=160).print(rows_table(summary["rows"]))
    if HAVE_MATPLOTLIB:
        written = plot_suite(report["results"], tmp_path / "plots")
        assert [p.name for p in written] == [
            "deliveries_vs_subscribers.png",
            "latency_distribution.png",
        ]
        assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)


def test_a_missing_peer_is_named_and_the_rest_still_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A module set to None in sys.modules cannot be imported: as if it were not installed.
    monkeypatch.setitem(sys.modules, "nautilus_trader", None)
    console, out = quiet()

    report = run_suite(tiny(families=("burst",), without=frozenset({"order_book"})), console)

    assert list(report["results"]) == ["burst"]
    assert report["peers"]["nautilus_trader"]["missing"].startswith("not installed")
    assert report["peers"]["order_book"]["missing"] == "turned off with --without"
    for row in report["results"]["burst"]["results"].values():
        assert "nautilus" not in row
        assert {"pipeline", "raw_each", "raw_drain", "sequential"} <= set(row)
    text = out.getvalue()
    assert "peer nautilus_trader missing" in text
    assert "peer order_book missing" in text
    capsys.readouterr()


def test_bench_command_writes_json_for_the_families_asked(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    argv = ["bench", "--quick", "--only", "books", "--without", "order_book"]

    code = main([*argv, "--json", str(report_path), "--plots", str(tmp_path / "plots")])

    report = orjson.loads(report_path.read_bytes())
    assert code == 0
    assert report["families"] == ["books"]
    assert report["summary"]["rates"] == []
    books = [row for row in report["summary"]["rows"] if row["family"] == "books"]
    assert [row["comparison"] for row in books] == ["cryptofeed's order_book not installed"] * 3
    # Only burst and the latency families have plots; books alone draws none.
    assert report["plots"] == []


def test_families_are_parsed_in_suite_order_and_unknown_ones_refused() -> None:
    assert parse_families("books, burst") == ("burst", "books")
    with pytest.raises(ValueError, match="unknown families"):
        parse_families("burst,speed")
    with pytest.raises(SystemExit):
        main(["bench", "--only", "nothing"])


def test_a_busy_machine_is_flagged() -> None:
    assert busy_note({"load_1m_start": 0.2, "load_1m_end": 0.4, "cpu_count": 2}) is None
    note = busy_note({"load_1m_start": 1.9, "load_1m_end": 0.4, "cpu_count": 2})
    assert note is not None
    assert "1.90 at start" in note
