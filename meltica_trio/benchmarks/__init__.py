"""The benchmark suite: meltica-trio against raw trio, nautilus_trader and cryptofeed.

``meltica-trio bench`` runs every family in one process on the same inputs and prints a
table, writes JSON and PNG plots; ``meltica-trio soak`` runs a sustained load and judges
memory growth after warm-up. The ``bench/`` scripts run single families through the
``*_main`` functions here. Peers come from the ``bench`` extra; a missing one is reported
and its cases are left out.
"""

from __future__ import annotations

from meltica_trio.benchmarks._books import main as books_main
from meltica_trio.benchmarks._data_plane import main as pipeline_main
from meltica_trio.benchmarks._lifecycle import main as lifecycle_main

__all__ = ["books_main", "lifecycle_main", "pipeline_main"]
