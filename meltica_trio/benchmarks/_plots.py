"""PNG plots of the suite's results and of a soak, drawn with matplotlib (optional).

Figures are built on ``matplotlib.figure.Figure`` directly (the Agg canvas), never
through ``pyplot``: no global state, no backend switching, no window.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from meltica_trio.benchmarks._measure import CDF_POINTS, cdf_key
from meltica_trio.benchmarks._soak import SoakSample, SoakVerdict

RATE_PLOT: Final = "deliveries_vs_subscribers.png"
LATENCY_PLOT: Final = "latency_distribution.png"
SOAK_PLOT: Final = "soak.png"
CASE_LABELS: Final = {
    "pipeline": "meltica-trio pipeline",
    "raw_each": "raw trio, await per item",
    "raw_drain": "raw trio, receive_nowait drain",
    "nautilus": "nautilus_trader MessageBus",
    "sequential": "plain loop, handlers in turn",
    "raw": "raw trio channels",
}
DPI: Final = 110


def new_grid(width: float, height: float, rows: int, columns: int) -> tuple[Any, Any]:
    """A figure and its ``rows`` x ``columns`` axes (a 2-D array), on the Agg canvas."""
    figure_module = importlib.import_module("matplotlib.figure")
    figure = figure_module.Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return figure, figure.subplots(rows, columns, squeeze=False)


def new_figure(width: float, height: float, panels: int = 1) -> tuple[Any, list[Any]]:
    """A figure with ``panels`` axes side by side."""
    figure, grid = new_grid(width, height, 1, panels)
    return figure, list(grid[0])


def plot_rates(burst: dict[str, Any], path: Path) -> Path:
    """Deliveries/s (median, with min-max) against subscriber count, one line per case."""
    figure, (axes,) = new_figure(9.5, 4.5)
    table = burst["results"]
    counts = [int(n) for n in table]
    cases = [case for case in CASE_LABELS if any(case in row for row in table.values())]
    for case in cases:
        rows = [(int(n), row[case]["rate"]) for n, row in table.items() if case in row]
        xs = [n for n, _ in rows]
        medians = [s.median / 1e6 for _, s in rows]
        low = [m - s.minimum / 1e6 for m, (_, s) in zip(medians, rows, strict=True)]
        high = [s.maximum / 1e6 - m for m, (_, s) in zip(medians, rows, strict=True)]
        axes.errorbar(
            xs, medians, yerr=[low, high], marker="o", capsize=3, label=CASE_LABELS[case]
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xticks(counts, [str(n) for n in counts])
    axes.set_xlabel("subscribers")
    axes.set_ylabel("deliveries/s (millions, median of repeats)")
    axes.set_title("Burst: deliveries/s against subscribers")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.savefig(path)
    return path


def plot_cdf(axes: Any, rows: dict[str, Any], title: str) -> None:
    """Each case's latency distribution (medians over repeats) as a CDF on ``axes``."""
    for label, spreads in rows.items():
        points = [
            (spreads[cdf_key("handler", f)].median / 1e3, f * 100)
            for f in CDF_POINTS
            if cdf_key("handler", f) in spreads
        ]
        if points:
            axes.plot([x for x, _ in points], [y for _, y in points], marker=".", label=label)
    axes.set_xscale("log")
    axes.set_xlabel("intake -> handler start (us, log)")
    axes.set_ylabel("percentile")
    axes.set_title(title, fontsize="medium")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="x-small")


def plot_latency(
    paced: dict[str, Any] | None, isolation: dict[str, Any] | None, path: Path
) -> Path:
    """Handler-measured latency distributions: paced runs, and the isolation runs."""
    panels = [p for p in (paced, isolation) if p is not None]
    figure, axes = new_figure(6.0 * len(panels), 4.5, len(panels))
    index = 0
    if paced is not None:
        rows = {
            f"{CASE_LABELS.get(case, case)}, N={n}": spreads
            for n, row in paced["results"].items()
            for case, spreads in row.items()
        }
        plot_cdf(axes[index], rows, "Paced 2000 events/s")
        index += 1
    if isolation is not None:
        rows = {
            CASE_LABELS.get(case, case): row["with_slow"]
            for case, row in isolation["results"].items()
        }
        plot_cdf(axes[index], rows, "Isolation: nine fast consumers, one slow joined")
    figure.savefig(path)
    return path


def plot_suite(results: dict[str, Any], directory: Path) -> list[Path]:
    """Every plot the suite's ``results`` allow, written into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if "burst" in results:
        written.append(plot_rates(results["burst"], directory / RATE_PLOT))
    paced, isolation = results.get("paced"), results.get("isolation")
    if paced is not None or isolation is not None:
        written.append(plot_latency(paced, isolation, directory / LATENCY_PLOT))
    return written


def plot_soak(samples: Sequence[SoakSample], verdict: SoakVerdict, path: Path) -> Path:
    """RSS, GC collections, pool leases and lane depths against deliveries."""
    figure, grid = new_grid(11.0, 7.0, 2, 2)
    millions = [s.deliveries / 1e6 for s in samples]
    rss, gcs, pool, lanes = grid[0][0], grid[0][1], grid[1][0], grid[1][1]
    rss.plot(millions, [s.rss_bytes / (1 << 20) for s in samples])
    rss.axvline(verdict.warmup_deliveries / 1e6, linestyle="--", color="grey", label="warm-up")
    rss.set_ylabel("RSS (MiB)")
    rss.set_title(
        f"RSS: {verdict.rss_growth_bytes / 1024:+.0f} KiB after warm-up "
        f"({'PASS' if verdict.passed else 'FAIL'}, goal <= {verdict.goal_bytes >> 10} KiB)",
        fontsize="medium",
    )
    rss.legend(fontsize="small")
    for generation in range(3):
        gcs.plot(
            millions, [s.gc_collections[generation] for s in samples], label=f"gen{generation}"
        )
    gcs.set_yscale("symlog")
    gcs.set_ylabel("collections since start")
    gcs.set_title("GC collections per generation", fontsize="medium")
    gcs.legend(fontsize="small")
    pool.plot(millions, [s.pool_in_use for s in samples])
    pool.set_ylabel("envelopes lent out")
    pool.set_title(f"Pool in use (capacity {verdict.pool_capacity:,})", fontsize="medium")
    lanes.plot(millions, [s.intake_depth for s in samples], label="intake now")
    lanes.plot(millions, [s.lane_depth_total for s in samples], label="all lanes now")
    lanes.plot(millions, [s.lane_high_water for s in samples], label="deepest lane so far")
    lanes.set_ylabel("events queued")
    lanes.set_title("Queues at each sample (a burst just published)", fontsize="medium")
    lanes.legend(fontsize="small")
    for ax in (pool, lanes):
        ax.set_xlabel("deliveries (millions)")
    for ax in (rss, gcs, pool, lanes):
        ax.grid(True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
