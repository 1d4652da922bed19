"""The suite's summary: the headline figure of every family, next to its baseline or peer.

Two tables. *Deliveries/s*: the burst family per subscriber count, ours against
nautilus_trader's MessageBus (the anchor), raw trio and a plain loop, each ratio of
medians with its range over paired repeats. *Figures*: one row per headline of the
other families. Both are built from the suite's results as plain rows (for the JSON
report) and drawn as rich tables.
"""

from __future__ import annotations

from typing import Any, Final

import attrs
from rich.table import Table

from meltica_trio.benchmarks._books import PEER_CASES
from meltica_trio.benchmarks._measure import Ratio, Spread

RATE_BASES: Final = (
    ("nautilus", "nautilus_trader MessageBus"),
    ("raw_each", "raw trio, await each"),
    ("raw_drain", "raw trio, drain"),
    ("sequential", "plain loop"),
)


@attrs.frozen(kw_only=True)
class Row:
    """One headline: what, ours, the baseline's, and how they compare."""

    family: str
    measure: str
    ours: str
    baseline: str
    comparison: str


def millions(s: Spread) -> str:
    return f"{s.median / 1e6:.2f}M"


def ratio_text(r: Ratio) -> str:
    return f"{r.of_medians:.2f}x ({r.lowest:.2f}-{r.highest:.2f})"


def rate_rows(burst: dict[str, Any]) -> list[dict[str, str]]:
    """Per subscriber count: our deliveries/s, each baseline's, and ours over theirs."""
    rows = []
    for n, row in burst["results"].items():
        out = {"subscribers": n, "meltica-trio": millions(row["pipeline"]["rate"])}
        for case, label in RATE_BASES:
            if case in row:
                out[label] = millions(row[case]["rate"])
                out[f"ours / {label}"] = ratio_text(row[f"pipeline_vs_{case}"])
        rows.append(out)
    return rows


def us(ns: float) -> str:
    return f"{ns / 1e3:,.0f} us"


def paced_rows(paced: dict[str, Any]) -> list[Row]:
    rows = []
    for n, row in paced["results"].items():
        ours, raw = row["pipeline"], row.get("raw")
        rows.append(
            Row(
                family="paced",
                measure=f"2000 ev/s, N={n}: p99 intake->handler (handler-measured)",
                ours=us(ours["handler_p99_ns"].median),
                baseline=f"raw trio {us(raw['handler_p99_ns'].median)}" if raw else "-",
                comparison=f"CPU {ours['cpu_share'].median:.0%}"
                + (f" vs {raw['cpu_share'].median:.0%}" if raw else ""),
            )
        )
    return rows


def isolation_rows(isolation: dict[str, Any]) -> list[Row]:
    table = isolation["results"]
    rise = {case: row["p99_ratio"]["handler_p99_max_ns"] for case, row in table.items()}
    others = ", ".join(
        f"{case} {r.of_medians - 1:+.0%}" for case, r in rise.items() if case != "pipeline"
    )
    with_slow = {
        case: row["with_slow"]["handler_p99_max_ns"].median for case, row in table.items()
    }
    return [
        Row(
            family="isolation",
            measure="nine fast consumers' worst p99 when a 100x slower one joins",
            ours=f"{rise['pipeline'].of_medians - 1:+.1%} ({us(with_slow['pipeline'])})",
            baseline=others or "-",
            comparison=", ".join(f"{c} {us(v)}" for c, v in with_slow.items() if c != "pipeline"),
        )
    ]


def parallel_rows(parallel: dict[str, Any]) -> list[Row]:
    table = parallel["results"]
    sequential = table.get("sequential")
    return [
        Row(
            family="parallel",
            measure="efficiency, 10 async consumers awaiting 5 ms each",
            ours=f"{table['pipeline']['efficiency'].median:.3f}",
            baseline=f"sequential {sequential['efficiency'].median:.3f}" if sequential else "-",
            comparison=f"wall {table['pipeline']['wall_s'].median:.2f} s"
            + (f" vs {sequential['wall_s'].median:.2f} s" if sequential else ""),
        )
    ]


def memory_rows(memory: dict[str, Any]) -> list[Row]:
    bursts = memory["bursts"]
    return [
        Row(
            family="memory",
            measure=f"RSS growth after warm-up, {bursts['deliveries'] / 1e6:g}M deliveries",
            ours=f"{bursts['rss_growth_bytes'] / 1024:+.0f} KiB",
            baseline="goal <= 1024 KiB",
            comparison=f"pool high water {bursts['pool_peak_utilisation']:.0%}",
        )
    ]


def lifecycle_rows(lifecycle: dict[str, Any]) -> list[Row]:
    timings, ratios = lifecycle["timings_ns_per_op"], lifecycle["ratios"]
    fresh = ratios["pooled_vs_fresh_event"]
    return [
        Row(
            family="lifecycle",
            measure="pooled duplicate + recycle vs fresh Event(...)",
            ours=f"{timings['pooled_production']['median']:.0f} ns",
            baseline=f"fresh {timings['fresh_event']['median']:.0f} ns",
            comparison=(
                f"{fresh['of_medians']:.2f}x ({fresh['lowest']:.2f}-{fresh['highest']:.2f})"
            ),
        )
    ]


def books_rows(books: dict[str, Any]) -> list[Row]:
    cases, versus = books["cases"], books.get("vs_cryptofeed", {})
    rows = []
    for ours, theirs in PEER_CASES.items():
        ratio = versus.get(ours)
        rows.append(
            Row(
                family="books",
                measure=ours,
                ours=f"{cases[ours]['median_us']:.2f} us",
                baseline=f"cryptofeed {cases[theirs]['median_us']:.2f} us" if ratio else "-",
                comparison=(
                    f"{ratio['of_medians']:.2f}x ({ratio['lowest']:.2f}-{ratio['highest']:.2f})"
                    if ratio
                    else "cryptofeed's order_book not installed"
                ),
            )
        )
    return rows


ROW_BUILDERS: Final = {
    "lifecycle": lifecycle_rows,
    "paced": paced_rows,
    "parallel": parallel_rows,
    "isolation": isolation_rows,
    "memory": memory_rows,
    "books": books_rows,
}


def summarise_suite(results: dict[str, Any]) -> dict[str, Any]:
    """The summary rows of whatever families ran."""
    rows = [
        attrs.asdict(row)
        for family, build in ROW_BUILDERS.items()
        if family in results
        for row in build(results[family])
    ]
    rates = rate_rows(results["burst"]) if "burst" in results else []
    return {"rates": rates, "rows": rows}


def rate_table(rates: list[dict[str, str]]) -> Table:
    columns = list(dict.fromkeys(key for row in rates for key in row))
    table = Table(title="Burst deliveries/s (median; ratio of medians, range over paired repeats)")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rates:
        table.add_row(*(row.get(column, "-") for column in columns))
    return table


def rows_table(rows: list[dict[str, str]]) -> Table:
    table = Table(title="Headline figures (medians)")
    for column in ("family", "measure", "ours", "baseline", "comparison"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["family"], row["measure"], row["ours"], row["baseline"], row["comparison"]
        )
    return table
