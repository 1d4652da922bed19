"""The benchmarks' input: the shared captures, and real trades replayed from them.

The input is real: the ``aggTrade`` frames of the Binance spot capture become
:class:`Trade` payloads (price ``p``, size ``q``, side from ``m``: buyer-is-maker means the
aggressor sold, trade id ``a``), built once and cycled. Each instrument's stream is
numbered 1, 2, 3... so ordering releases every event at once.

The captures are looked up, first found wins, in ``$MELTICA_FIXTURES``, in
``shared/fixtures`` beside the checkout (``../shared/fixtures`` from the project root, as
the project lays them out), and in the copies under ``tests/providers/data``.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import attrs
import orjson

from meltica_trio.events import Side, Trade

BINANCE_CAPTURE: Final = "binance-spot-capture.jsonl"
OKX_CAPTURE: Final = "okx-capture.jsonl"
FIXTURES_ENV: Final = "MELTICA_FIXTURES"
"""Environment variable naming a directory that holds the captures."""
_ROOT: Final = Path(__file__).resolve().parents[2]
"""The project root when running from a checkout (an editable install)."""
PROVIDER: Final = "binance"
QUOTE_ASSETS: Final = ("USDT", "BUSD", "BTC", "ETH", "BNB", "EUR")
"""Quote assets, longest match first, for turning ``NKNUSDT`` into ``NKN-USDT``."""

RawItem = tuple[int, Trade]
"""What the raw-trio baselines send: (ingest_ts ns, payload)."""


def fixture_candidates() -> list[Path]:
    """Where the captures may be, in the order they are tried."""
    found = [Path(os.environ[FIXTURES_ENV])] if os.environ.get(FIXTURES_ENV) else []
    return [
        *found,
        Path.cwd().parent / "shared" / "fixtures",
        _ROOT.parent / "shared" / "fixtures",
        _ROOT / "tests" / "providers" / "data",
    ]


def find_fixtures(directory: Path | None = None) -> Path:
    """The first directory holding both captures (``directory`` if given).

    Raises:
        FileNotFoundError: no candidate holds them.
    """
    candidates = [directory] if directory is not None else fixture_candidates()
    for candidate in candidates:
        if (candidate / BINANCE_CAPTURE).is_file() and (candidate / OKX_CAPTURE).is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"no {BINANCE_CAPTURE} and {OKX_CAPTURE} in any of: {tried}")


def canonical_instrument(symbol: str) -> str:
    """``NKNUSDT`` -> ``NKN-USDT``."""
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return f"{symbol[: -len(quote)]}-{quote}"
    raise ValueError(f"no known quote asset in {symbol!r}")


def parse_agg_trade(frame: dict[str, Any]) -> tuple[str, Trade]:
    """(instrument, Trade) from a Binance ``aggTrade`` payload."""
    return canonical_instrument(frame["s"]), Trade(
        price=frame["p"],
        size=frame["q"],
        # m: the buyer is the maker, so the aggressor (taker) sold.
        side=Side.SELL if frame["m"] else Side.BUY,
        trade_id=str(frame["a"]),
        trade_ts=int(frame["T"]) * 1_000_000,
    )


@attrs.frozen
class Tape:
    """The capture's trades, replayed in a loop with a fresh sequence per stream."""

    trades: tuple[tuple[str, Trade], ...]

    @classmethod
    def from_capture(cls, path: Path) -> Tape:
        """The ``aggTrade`` payloads of a Binance capture, in order.

        Raises:
            ValueError: the capture has none.
        """
        trades = []
        with path.open("rb") as lines:
            for line in lines:
                record = orjson.loads(line)
                data = record.get("data")
                if record.get("kind") != "ws" or not isinstance(data, dict):
                    continue
                frame = data.get("data")
                if isinstance(frame, dict) and frame.get("e") == "aggTrade":
                    trades.append(parse_agg_trade(frame))
        if not trades:
            raise ValueError(f"no aggTrade frames in {path}")
        return cls(tuple(trades))

    @property
    def instruments(self) -> tuple[str, ...]:
        return tuple(sorted({instrument for instrument, _ in self.trades}))

    def cursor(self) -> Iterator[tuple[str, Trade, int]]:
        """Endless (instrument, payload, seq); each instrument's seq runs 1, 2, 3..."""
        counters = {instrument: itertools.count(1) for instrument in self.instruments}
        for instrument, trade in itertools.cycle(self.trades):
            yield instrument, trade, next(counters[instrument])

    def raw_items(self) -> Iterator[RawItem]:
        """Endless (ingest_ts, payload) for the raw-trio baselines, stamped as drawn."""
        now = time.time_ns
        for _, trade in itertools.cycle(self.trades):
            yield now(), trade
