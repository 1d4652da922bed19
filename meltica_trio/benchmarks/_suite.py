"""The whole suite in one process: every family, its peers, one report.

Families run in order (lifecycle, burst, paced, parallel, isolation, memory, books), each
with its own progress bar, printing its detailed tables as it goes; the suite then prints
the summary (:mod:`._summary`), writes the JSON report and draws the plots. Peers missing
here are named with the reason at the start, and their cases are left out.

``SuiteConfig.quick()`` is a smoke run (well under a minute on the project machine): few
repeats, short runs, subscribers 1, 10 and 50 only; its figures are not for quoting.
``SuiteConfig.full()`` is what the README's figures come from.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import attrs
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from meltica_trio.benchmarks import _books, _data_plane, _lifecycle
from meltica_trio.benchmarks._measure import format_load, load_1m, machine_context
from meltica_trio.benchmarks._peers import MATPLOTLIB, NAUTILUS, ORDER_BOOK, Peer, find_peers
from meltica_trio.benchmarks._tape import BINANCE_CAPTURE, Tape, find_fixtures

FAMILIES: Final = ("lifecycle", "burst", "paced", "parallel", "isolation", "memory", "books")
"""Every benchmark family, in the order the suite runs them."""
QUICK_SUBSCRIBERS: Final = (1, 10, 50)
"""The anchor's subscriber counts: the quick run measures only these."""
QUICK_SECONDS: Final = 0.5
"""Seconds per paced and isolation run in a quick suite."""
QUICK_DELIVERIES: Final = 50_000
QUICK_MEMORY_DELIVERIES: Final = 300_000
QUICK_PARALLEL_EVENTS: Final = 10
QUICK_BOOK_ROUNDS: Final = 5
BUSY_LOAD: Final = 1.0
"""A 1-minute load average above this at start means other work shared the 2 cores."""


@attrs.frozen(kw_only=True)
class SuiteConfig:
    """What one suite run measures and how hard.

    Attributes:
        quick: a smoke run (figures not for quoting).
        families: which families to run, in :data:`FAMILIES` order.
        without: peers to leave out even when installed.
        lifecycle: knobs of the lifecycle family.
        data_plane: knobs of the burst, paced, parallel, isolation and memory families.
        books: knobs of the books family.
        fixtures: where the captures are (``None``: looked up).
    """

    quick: bool
    families: tuple[str, ...] = FAMILIES
    without: frozenset[str] = frozenset()
    lifecycle: argparse.Namespace
    data_plane: argparse.Namespace
    books: argparse.Namespace
    fixtures: Path | None = None

    @classmethod
    def full(cls, **overrides: Any) -> SuiteConfig:
        """The full suite, as the README's figures were measured."""
        return cls(
            quick=False,
            lifecycle=_lifecycle.settings(quick=False),
            data_plane=_data_plane.settings(quick=False),
            books=_books.settings(quick=False),
            **overrides,
        )

    @classmethod
    def quick_run(cls, **overrides: Any) -> SuiteConfig:
        """A smoke run: subscribers 1, 10 and 50, one short run per paced case."""
        return cls(
            quick=True,
            lifecycle=_lifecycle.settings(quick=True),
            data_plane=_data_plane.settings(
                quick=True,
                subscribers=QUICK_SUBSCRIBERS,
                duration=QUICK_SECONDS,
                deliveries=QUICK_DELIVERIES,
                memory_deliveries=QUICK_MEMORY_DELIVERIES,
                parallel_events=QUICK_PARALLEL_EVENTS,
            ),
            books=_books.settings(quick=True, rounds=QUICK_BOOK_ROUNDS),
            **overrides,
        )


def parse_families(text: str) -> tuple[str, ...]:
    """``burst,books`` -> the families in suite order; unknown names raise ValueError."""
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    unknown = wanted - set(FAMILIES)
    if unknown or not wanted:
        raise ValueError(f"unknown families {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    return tuple(f for f in FAMILIES if f in wanted)


def describe_peers(peers: dict[str, Peer], console: Console) -> None:
    uses = {
        NAUTILUS: "the anchor in the burst family (MessageBus, N = 1, 10, 50)",
        ORDER_BOOK: "cryptofeed's order book in the books family",
        MATPLOTLIB: "the PNG plots",
    }
    for name, peer in peers.items():
        if peer.available:
            console.print(f"  peer {name} {peer.version}: {uses.get(name, '')}")
        else:
            console.print(
                f"  [yellow]peer {name} missing[/]: {peer.missing}; left out: {uses[name]}"
            )


Step = Callable[[], None]


def run_family(
    name: str, config: SuiteConfig, peers: dict[str, Peer], tape: Tape, advance: Step
) -> dict[str, Any]:
    """One family's report (the shape its own script writes, plus load and time)."""
    started, before = time.perf_counter(), load_1m()
    if name == "lifecycle":
        report, timings = _lifecycle.run_lifecycle(config.lifecycle, advance)
        _lifecycle.print_report(report, timings)
    elif name == "books":
        knobs = config.books
        report = _books.run(
            knobs.rounds,
            knobs.repeats,
            peers=peers[ORDER_BOOK].available,
            source=config.fixtures,
            advance=advance,
        )
        _books.print_table(report)
    else:
        return _data_plane.run_one(name, data_plane_args(config, peers, advance), tape)
    return report | {
        "load_1m_start": before,
        "load_1m_end": load_1m(),
        "elapsed_s": time.perf_counter() - started,
    }


def data_plane_args(
    config: SuiteConfig, peers: dict[str, Peer], advance: Step
) -> argparse.Namespace:
    extras = {"sequential"} | ({"nautilus"} if peers[NAUTILUS].available else set())
    return argparse.Namespace(**vars(config.data_plane), extras=frozenset(extras), advance=advance)


def family_runs(name: str, config: SuiteConfig, peers: dict[str, Peer]) -> int:
    if name == "lifecycle":
        return _lifecycle.lifecycle_runs(config.lifecycle)
    if name == "books":
        return _books.books_runs(config.books, peers=peers[ORDER_BOOK].available)
    return _data_plane.RUN_COUNTS[name](data_plane_args(config, peers, lambda: None))


def run_suite(config: SuiteConfig, console: Console) -> dict[str, Any]:
    """Run every family of ``config``; the whole report (see the module docs)."""
    peers = find_peers(without=config.without)
    source = find_fixtures(config.fixtures)
    config = attrs.evolve(config, fixtures=source)
    tape = Tape.from_capture(source / BINANCE_CAPTURE)
    context = machine_context()
    console.print(f"meltica-trio benchmark suite ({'quick' if config.quick else 'full'} run)")
    console.print(
        f"  Python {context['python']} ({context['implementation']}) on {context['platform']}, "
        f"{context['cpu_count']} CPUs, trio {context['trio']}"
    )
    console.print(f"  input: the captures in {source}")
    console.print(f"  load average (1 min) at start: {format_load(context['load_1m_start'])}")
    describe_peers(peers, console)
    results: dict[str, Any] = {}
    columns = (
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        overall = progress.add_task("suite", total=len(config.families))
        for name in config.families:
            task = progress.add_task(name, total=family_runs(name, config, peers))
            results[name] = run_family(
                name, config, peers, tape, functools.partial(progress.advance, task)
            )
            progress.update(task, completed=progress.tasks[task].total)
            progress.advance(overall)
    context["load_1m_end"] = load_1m()
    return {
        "context": context,
        "quick": config.quick,
        "families": list(config.families),
        "peers": {name: attrs.asdict(peer) for name, peer in peers.items()},
        "results": results,
    }


def busy_note(context: dict[str, Any]) -> str | None:
    """A warning when the machine was busy during the run, else ``None``."""
    loads = [context.get("load_1m_start"), context.get("load_1m_end")]
    known = [load for load in loads if load is not None]
    if known and max(known) > BUSY_LOAD:
        return (
            f"the machine was busy (load average {format_load(loads[0])} at start, "
            f"{format_load(loads[1])} at end, {context['cpu_count']} CPUs): "
            "wall-clock figures understate; ratios of interleaved runs hold up better"
        )
    return None
