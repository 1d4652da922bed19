"""The ``bench`` and ``soak`` subcommands of ``meltica-trio``: arguments and what they do.

``meltica-trio bench [--quick] [--json PATH] [--plots DIR] [--only FAMILIES] [--without
PEER]`` runs the suite (:mod:`._suite`); it always exits 0 when it ran (no thresholds:
the figures and their PASS/FAIL lines are information). ``meltica-trio soak
--deliveries N [--json PATH] [--plot PATH]`` runs the soak (:mod:`._soak`) and exits 0
when the memory verdict passes, 1 when it does not.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Final

import attrs
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from meltica_trio.benchmarks._measure import format_load, load_1m, machine_context, write_json
from meltica_trio.benchmarks._peers import MATPLOTLIB, PEERS, find_peer
from meltica_trio.benchmarks._plots import plot_soak, plot_suite
from meltica_trio.benchmarks._soak import SOAK_DELIVERIES, SOAK_SAMPLES, SoakSample, run_soak
from meltica_trio.benchmarks._suite import SuiteConfig, busy_note, parse_families, run_suite
from meltica_trio.benchmarks._summary import rate_table, rows_table, summarise_suite
from meltica_trio.benchmarks._tape import BINANCE_CAPTURE, Tape, find_fixtures

WIDE: Final = 160
"""Columns for the tables when output is not a terminal (logs, CI)."""
MIN_SOAK_DELIVERIES: Final = 10_000
"""Below this a soak has too few bursts for a warm-up and a trend."""


def _families(text: str) -> tuple[str, ...]:
    try:
        return parse_families(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def wide_console() -> Console:
    """A console for the tables: the terminal's width, or 160 columns into a file or pipe."""
    return Console() if sys.stdout.isatty() else Console(width=WIDE)


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``meltica-trio bench`` on its subparser."""
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run, under a minute (not for quoting)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the report as JSON")
    parser.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots into DIR")
    parser.add_argument(
        "--only", type=_families, metavar="FAMILIES", help="comma-separated families to run"
    )
    parser.add_argument(
        "--without",
        action="append",
        choices=PEERS,
        default=[],
        help="leave a peer out even when installed (repeatable)",
    )
    parser.add_argument(
        "--fixtures", type=Path, metavar="DIR", help="directory holding the captures"
    )


def add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``meltica-trio soak`` on its subparser."""
    parser.add_argument(
        "--deliveries",
        type=int,
        default=SOAK_DELIVERIES,
        help=f"deliveries to make (default {SOAK_DELIVERIES:,})",
    )
    parser.add_argument(
        "--samples", type=int, default=SOAK_SAMPLES, help="about how many samples to take"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write samples and verdict")
    parser.add_argument(
        "--plot", type=Path, metavar="PATH", default=Path("soak.png"), help="the PNG plot"
    )
    parser.add_argument(
        "--fixtures", type=Path, metavar="DIR", help="directory holding the captures"
    )


def run_bench_command(args: argparse.Namespace, console: Console | None = None) -> int:
    """``meltica-trio bench``: run, summarise, write; 0 once it has run."""
    console = console or wide_console()
    overrides: dict[str, Any] = {"without": frozenset(args.without), "fixtures": args.fixtures}
    if args.only:
        overrides["families"] = args.only
    config = SuiteConfig.quick_run(**overrides) if args.quick else SuiteConfig.full(**overrides)
    started = time.perf_counter()
    report = run_suite(config, console)
    report["elapsed_s"] = time.perf_counter() - started
    report["summary"] = summarise_suite(report["results"])
    report["plots"] = []
    if args.plots is not None:
        report["plots"] = [str(p) for p in write_plots(report, args.plots, console)]
    console.print()
    if report["summary"]["rates"]:
        console.print(rate_table(report["summary"]["rates"]))
    console.print(rows_table(report["summary"]["rows"]))
    context = report["context"]
    console.print(
        f"load average (1 min) {format_load(context['load_1m_start'])} at start, "
        f"{format_load(context['load_1m_end'])} at end; {report['elapsed_s']:.0f} s in all"
    )
    note = busy_note(context)
    if note:
        console.print(f"[yellow]note[/]: {note}")
    if args.json is not None:
        write_json(args.json, report)
        console.print(f"wrote {args.json}")
    return 0


def write_plots(report: dict[str, Any], directory: Path, console: Console) -> list[Path]:
    peer = find_peer(MATPLOTLIB)
    if not peer.available:
        console.print(f"[yellow]no plots[/]: matplotlib {peer.missing}")
        return []

    written = plot_suite(report["results"], directory)
    for path in written:
        console.print(f"wrote {path}")
    return written


def run_soak_command(args: argparse.Namespace, console: Console | None = None) -> int:
    """``meltica-trio soak``: 0 when RSS grew at most 1 MiB after warm-up, else 1."""
    console = console or wide_console()
    if args.deliveries < MIN_SOAK_DELIVERIES or args.samples < 1:
        console.print(f"--deliveries must be >= {MIN_SOAK_DELIVERIES:,} and --samples >= 1")
        return 2
    tape = Tape.from_capture(find_fixtures(args.fixtures) / BINANCE_CAPTURE)
    context = machine_context()
    console.print(
        f"meltica-trio soak: {args.deliveries:,} deliveries to 10 subscribers; load average "
        f"(1 min) {format_load(context['load_1m_start'])}"
    )
    columns = (TextColumn("soak"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("soak", total=args.deliveries)

        def show(sample: SoakSample) -> None:
            progress.update(task, completed=sample.deliveries)

        verdict, samples = run_soak(args.deliveries, tape, samples=args.samples, on_sample=show)
        progress.update(task, completed=args.deliveries)
    context["load_1m_end"] = load_1m()
    mib = 1 << 20
    console.print(
        f"RSS {verdict.rss_warm_bytes / mib:.2f} MiB after warm-up "
        f"({verdict.warmup_deliveries:,} deliveries), {verdict.rss_end_bytes / mib:.2f} MiB at "
        f"end: growth {verdict.rss_growth_bytes / 1024:+.0f} KiB (goal <= "
        f"{verdict.goal_bytes >> 10} KiB); sampled after warm-up "
        f"{verdict.sampled_growth_bytes / 1024:+.0f} KiB, trend "
        f"{verdict.slope_bytes_per_million / 1024:+.1f} KiB per million deliveries"
    )
    console.print(
        f"full (gen2) collections after warm-up: {verdict.gen2_after_warmup}; allocated blocks "
        f"{verdict.blocks_growth:+,}, GC-tracked objects {verdict.gc_objects_growth:+,}; pool "
        f"high water {verdict.pool_high_water:,} of {verdict.pool_capacity:,}; "
        f"{(verdict.deliveries - verdict.warmup_deliveries) / verdict.seconds / 1e6:.2f}M "
        "deliveries/s after warm-up"
    )
    console.print(
        f"load average (1 min) {format_load(context['load_1m_start'])} at start, "
        f"{format_load(context['load_1m_end'])} at end"
    )
    console.print(f"verdict: {'PASS' if verdict.passed else 'FAIL'}")
    if args.json is not None:
        report = {
            "context": context,
            "verdict": attrs.asdict(verdict),
            "samples": [attrs.asdict(s) for s in samples],
        }
        write_json(args.json, report)
        console.print(f"wrote {args.json}")
    plot = find_peer(MATPLOTLIB)
    if plot.available:
        console.print(f"wrote {plot_soak(samples, verdict, args.plot)}")
    else:
        console.print(f"[yellow]no plot[/]: matplotlib {plot.missing}")
    return 0 if verdict.passed else 1
