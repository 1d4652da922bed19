"""What keeping a venue book costs: per Binance diff, per OKX update with its checksum.

Run with ``meltica-trio bench`` (the suite, which adds cryptofeed's order book as a
peer, see :mod:`._book_peer`) or ``python bench/bench_books.py [--quick]``; the script
prints a table and writes the same figures to ``bench/results/books.json``.

The input is the real captures of ``shared/fixtures`` (or their copies in
``tests/providers/data``), parsed once up front: each book's snapshot and the diffs
that follow it. A *round* builds a fresh assembler per book, loads its snapshot
(untimed), then feeds it every diff of the capture in order (timed with
``time.perf_counter_ns``), exactly as a live connection would after syncing; a *repeat*
is ``rounds`` rounds, and each figure is the median over repeats of the timed total
divided by the number of diffs. Cases are interleaved within each repeat so drift in
machine load touches them all alike. The garbage collector stays enabled;
``gc.collect()`` runs between repeats, never inside one. The cases:

* ``binance diff`` is ``BookAssembler.on_diff`` under Binance rules: the ``U``/``u``
  continuity check, Decimal keys, sorted insert/remove, and the ``BookDelta`` it
  publishes (172 diffs over four books).
* ``okx update`` is ``BookAssembler.on_diff`` under OKX rules, including the CRC32
  checksum of the top 25 levels per side after every update (287 updates, three books,
  all checksums verified). Goal: at most 20 us.
* ``okx update, warm key cache`` is the same with one assembler per book kept across
  rounds (resynced between them, untimed), as on a long-running connection where the
  book's price-text-to-key cache already knows most prices. The goal is judged on the
  cold case above, which builds every book afresh.
* ``okx checksum only`` is ``OrderBook.checksum()`` on each OKX book as it stands after
  the capture: the checksum string from cached ``price:size`` fragments, then CRC32.
* ``binance parse`` / ``okx parse`` are the venue parsers on the depth frames alone
  (decoded JSON in, records out), for scale: the I/O loop pays them too.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from meltica_trio.benchmarks import _book_peer as peer
from meltica_trio.benchmarks._measure import write_json
from meltica_trio.benchmarks._tape import BINANCE_CAPTURE, OKX_CAPTURE, find_fixtures
from meltica_trio.providers import (
    BookAssembler,
    CaptureKind,
    DepthDiff,
    DepthSnapshot,
    SyncRules,
    read_capture,
)
from meltica_trio.providers import binance as binance_parser
from meltica_trio.providers import okx as okx_parser

DEFAULT_ROUNDS: Final = 200
"""Rounds per repeat in a full run (~34k Binance diffs, ~57k OKX updates)."""
DEFAULT_REPEATS: Final = 7
QUICK_ROUNDS: Final = 20
QUICK_REPEATS: Final = 3
OKX_GOAL_US: Final = 20.0
"""Pass criterion: one OKX update, checksum included, in at most 20 us."""
PEER_CASES: Final = {
    "binance diff": "cryptofeed binance diff",
    "okx update (incl. checksum)": "cryptofeed okx update (incl. checksum)",
    "okx checksum only": "cryptofeed okx checksum only",
}
"""Our case -> the peer's case on the same input (suite only, when order_book is here)."""

Book = tuple[str, DepthSnapshot, list[DepthDiff]]
"""(instrument, snapshot, the diffs after it) for one book."""


def binance_books(path: Path) -> tuple[list[Book], list[object]]:
    """Each Binance book's REST snapshot and the diffs that continue it; the raw frames."""
    snapshots: dict[str, DepthSnapshot] = {}
    diffs: dict[str, list[DepthDiff]] = {}
    frames: list[object] = []
    for record in read_capture(path):
        if record.kind is CaptureKind.REST:
            symbol = parse_qs(urlsplit(record.url).query)["symbol"][0]
            snap = binance_parser.parse_depth_snapshot(record.data, symbol)
            snapshots[snap.instrument] = snap
        elif record.kind is CaptureKind.WS and "@depth" in str(record.data):
            frames.append(record.data)
            (diff,) = binance_parser.parse_frame(record.data)
            assert isinstance(diff, DepthDiff)
            diffs.setdefault(diff.instrument, []).append(diff)
    books = []
    for instrument, snap in snapshots.items():
        assert snap.seq is not None
        after = [d for d in diffs[instrument] if d.last_seq is not None and d.last_seq > snap.seq]
        books.append((instrument, snap, after))
    return books, frames


def okx_books(path: Path) -> tuple[list[Book], list[object]]:
    """Each OKX book's pushed snapshot and its updates; the raw frames."""
    snapshots: dict[str, DepthSnapshot] = {}
    diffs: dict[str, list[DepthDiff]] = {}
    frames: list[object] = []
    for record in read_capture(path):
        data = record.data
        if record.kind is not CaptureKind.WS or not isinstance(data, dict):
            continue
        if data.get("arg", {}).get("channel") != "books" or "event" in data:
            continue
        frames.append(data)
        for message in okx_parser.parse_frame(data):
            if isinstance(message, DepthSnapshot):
                snapshots[message.instrument] = message
            elif isinstance(message, DepthDiff):
                diffs.setdefault(message.instrument, []).append(message)
    return [(i, s, diffs[i]) for i, s in snapshots.items()], frames


def time_books(books: list[Book], rules: SyncRules, rounds: int) -> tuple[int, int]:
    """Feed every book's diffs ``rounds`` times; (ns spent in on_diff, diffs fed)."""
    spent = fed = 0
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for instrument, snapshot, diffs in books:
            book = BookAssembler("bench", instrument, rules)
            book.start()
            book.on_snapshot(snapshot)
            on_diff = book.on_diff
            start = clock()
            for diff in diffs:
                on_diff(diff)
            spent += clock() - start
            fed += len(diffs)
            stats = book.statistics()
            assert stats.gaps == stats.checksum_failed == stats.resyncs == 0, stats
    return spent, fed


def time_books_warm(books: list[Book], rules: SyncRules, rounds: int) -> tuple[int, int]:
    """As :func:`time_books`, but one assembler per book for all rounds, resynced
    between them (untimed): a long-running connection, whose price-key cache is warm."""
    spent = fed = 0
    clock = time.perf_counter_ns
    assemblers = [BookAssembler("bench", instrument, rules) for instrument, _, _ in books]
    for _ in range(rounds):
        for book, (_, snapshot, diffs) in zip(assemblers, books, strict=True):
            book.resync("next round")
            book.on_snapshot(snapshot)
            on_diff = book.on_diff
            start = clock()
            for diff in diffs:
                on_diff(diff)
            spent += clock() - start
            fed += len(diffs)
    for book in assemblers:
        stats = book.statistics()
        assert stats.gaps == stats.checksum_failed == 0, stats
    return spent, fed


def time_calls(
    fn: Callable[[object], object], items: list[object], rounds: int
) -> tuple[int, int]:
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(rounds):
        for item in items:
            fn(item)
    return clock() - start, rounds * len(items)


def final_okx_books(books: list[Book]) -> list[object]:
    out: list[object] = []
    for instrument, snapshot, diffs in books:
        book = BookAssembler("bench", instrument, SyncRules.OKX)
        book.on_snapshot(snapshot)
        for diff in diffs:
            book.on_diff(diff)
        out.append(book.book)
    return out


def build_cases(
    source: Path, rounds: int, *, peers: bool = False
) -> dict[str, Callable[[], tuple[int, int]]]:
    """Each case as a callable returning (ns spent, operations); ``peers`` adds
    cryptofeed's order book on the same diffs (:data:`PEER_CASES`)."""
    binance, binance_frames = binance_books(source / BINANCE_CAPTURE)
    okx, okx_frames = okx_books(source / OKX_CAPTURE)
    okx_final = final_okx_books(okx)
    parse_rounds = max(rounds // 4, 1)
    cases: dict[str, Callable[[], tuple[int, int]]] = {
        "binance diff": lambda: time_books(binance, SyncRules.BINANCE, rounds),
        "okx update (incl. checksum)": lambda: time_books(okx, SyncRules.OKX, rounds),
        "okx update, warm key cache": lambda: time_books_warm(okx, SyncRules.OKX, rounds),
        "okx checksum only": lambda: time_calls(
            lambda b: b.checksum(),  # type: ignore[attr-defined]
            okx_final,
            rounds * 100,
        ),
        "binance parse (depth frame)": lambda: time_calls(
            binance_parser.parse_frame, binance_frames, parse_rounds
        ),
        "okx parse (books frame)": lambda: time_calls(
            okx_parser.parse_frame, okx_frames, parse_rounds
        ),
    }
    if peers:
        peer_final = peer.final_okx_books(okx)
        cases |= {
            PEER_CASES["binance diff"]: lambda: peer.time_binance(binance, rounds),
            PEER_CASES["okx update (incl. checksum)"]: lambda: peer.time_okx(okx, rounds),
            PEER_CASES["okx checksum only"]: lambda: time_calls(
                peer.checksum, peer_final, rounds * 100
            ),
        }
    return cases


def settings(
    *, quick: bool, rounds: int | None = None, repeats: int | None = None
) -> argparse.Namespace:
    """The knobs of the books benchmark, defaults filled in from ``quick``."""
    return argparse.Namespace(
        quick=quick,
        rounds=rounds or (QUICK_ROUNDS if quick else DEFAULT_ROUNDS),
        repeats=repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS),
    )


def books_runs(args: argparse.Namespace, *, peers: bool = False) -> int:
    """How many timed repeats of cases the benchmark makes (for progress bars)."""
    cases = 6 + (len(PEER_CASES) if peers else 0)
    return int(args.repeats * cases)


def run(
    rounds: int,
    repeats: int,
    *,
    peers: bool = False,
    source: Path | None = None,
    advance: Callable[[], None] | None = None,
) -> dict[str, Any]:
    source = source or find_fixtures()
    cases = build_cases(source, rounds, peers=peers)
    for case in cases.values():  # warm-up: imports, caches, first allocations
        case()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    ops: dict[str, int] = {}
    for _ in range(repeats):
        for name, case in cases.items():
            gc.collect()
            spent, count = case()
            samples[name].append(spent / count / 1000)
            ops[name] = count
            if advance is not None:
                advance()
    okx_median = statistics.median(samples["okx update (incl. checksum)"])
    result: dict[str, Any] = {
        "source": str(source),
        "rounds": rounds,
        "repeats": repeats,
        "cases": {
            name: {
                "median_us": statistics.median(values),
                "min_us": min(values),
                "max_us": max(values),
                "ops_per_repeat": ops[name],
            }
            for name, values in samples.items()
        },
        "goal": {"okx_update_us_max": OKX_GOAL_US, "passed": okx_median <= OKX_GOAL_US},
        "machine": {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }
    if peers:
        result["vs_cryptofeed"] = peer_ratios(samples)
    return result


def peer_ratios(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Our time over the peer's per case: median ratio and the range over paired repeats."""
    ratios = {}
    for ours, theirs in PEER_CASES.items():
        paired = [a / b for a, b in zip(samples[ours], samples[theirs], strict=True)]
        ratios[ours] = {
            "of_medians": statistics.median(samples[ours]) / statistics.median(samples[theirs]),
            "lowest": min(paired),
            "highest": max(paired),
        }
    return ratios


def print_table(result: dict[str, Any]) -> None:
    print(f"book maintenance on {result['source']}")
    print(f"median of {result['repeats']} repeats x {result['rounds']} rounds")
    width = max(30, *(len(name) for name in result["cases"]))
    print(f"{'case':<{width}} {'median us':>10} {'min us':>8} {'max us':>8} {'ops/repeat':>11}")
    for name, row in result["cases"].items():
        print(
            f"{name:<{width}} {row['median_us']:>10.2f} {row['min_us']:>8.2f} "
            f"{row['max_us']:>8.2f} {row['ops_per_repeat']:>11}"
        )
    for ours, ratio in result.get("vs_cryptofeed", {}).items():
        print(
            f"  {ours} / cryptofeed's: {ratio['of_medians']:.2f}x "
            f"({ratio['lowest']:.2f}-{ratio['highest']:.2f} over paired repeats)"
        )
    goal = result["goal"]
    verdict = "PASS" if goal["passed"] else "FAIL"
    print(f"goal: okx update <= {goal['okx_update_us_max']:.0f} us ... {verdict}")


def main(argv: list[str] | None = None, *, default_json: Path) -> int:
    """The ``bench/bench_books.py`` script: 0 when the OKX goal is met, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and repeats")
    parser.add_argument("--rounds", type=int, help="rounds per repeat")
    parser.add_argument("--repeats", type=int, help="repeats per case")
    args = parser.parse_args(argv)
    knobs = settings(quick=args.quick, rounds=args.rounds, repeats=args.repeats)
    result = run(knobs.rounds, knobs.repeats)
    print_table(result)
    write_json(default_json, result)
    print(f"wrote {default_json}")
    return 0 if result["goal"]["passed"] else 1
