"""The ``meltica-trio`` command: the demo main job and capture replay, end to end."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from meltica_trio.cli import main

DATA = Path(__file__).parent / "providers" / "data"


def test_demo_runs_headless_and_returns_every_lease(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    argv = ["demo", "--seconds", "3", "--consumers", "5", "--headless"]
    code = main([*argv, "--summary-json", str(summary_path)])
    summary = orjson.loads(summary_path.read_bytes())

    assert code == 0
    assert summary["leases_outstanding"] == 0
    assert summary["events"] > 0
    assert summary["deliveries"] >= summary["events"]
    assert summary["dlq"] == sum(c["failed"] for c in summary["consumers"].values())
    # Orders went to the simulated venues over real sockets, and nothing was lost.
    assert summary["orders_submitted"] > 0
    assert summary["venue_orders"] == summary["orders_submitted"]
    assert summary["duplicate_orders"] == 0
    assert summary["exec_reports_lost"] == 0
    assert summary["exec_reports_emitted"] == summary["exec_reports_delivered"] > 0


@pytest.mark.parametrize(
    ("capture", "venue", "books"),
    [
        (
            "binance-spot-capture.jsonl",
            "binance",
            {"binance:NKNUSDT", "binance:BLZETH", "binance:LRCBTC", "binance:RUNEEUR"},
        ),
        ("okx-capture.jsonl", "okx", {"okx:BTC-USDT", "okx:BTC-USD-220527", "okx:UNI-USD-SWAP"}),
    ],
)
def test_replay_writes_every_book_live_with_exact_levels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], capture: str, venue: str, books: set[str]
) -> None:
    books_path = tmp_path / "books.json"
    code = main(
        [
            "replay",
            str(DATA / capture),
            "--venue",
            venue,
            "--depth",
            "3",
            "--books-json",
            str(books_path),
        ]
    )
    result = orjson.loads(books_path.read_bytes())

    assert code == 0
    assert set(result) == books
    for book in result.values():
        assert book["status"] == "live"
        assert book["gaps"] == 0
        assert book["checksum_failed"] == 0
        assert len(book["bids"]) == 3
        assert all(
            isinstance(price, str) and isinstance(size, str) for price, size in book["bids"]
        )
    assert "live" in capsys.readouterr().out


def test_replay_of_a_missing_file_fails_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", str(tmp_path / "absent.jsonl"), "--venue", "okx"])

    assert code == 1
    assert "absent.jsonl" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--seconds", "0"],
        ["demo", "--consumers", "0"],
        ["replay", "x.jsonl", "--venue", "kraken"],
        ["replay", "x.jsonl", "--venue", "okx", "--depth", "0"],
    ],
)
def test_bad_arguments_exit_with_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
