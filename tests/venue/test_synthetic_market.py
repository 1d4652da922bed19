"""The synthetic market: seeded, two-sided, moving, and never crossing the book."""

from __future__ import annotations

import random
import socket
from decimal import Decimal

import pytest

import meltica_trio.venue as venue_pkg
from meltica_trio.venue import MarketConfig, MatchingEngine, SyntheticMarket, run_venue_cli


def run(seed: int, steps: int) -> tuple[MatchingEngine, list[float], int]:
    engine = MatchingEngine("BTCUSDT")
    market = SyntheticMarket(
        engine, Decimal("0.01"), Decimal("0.00001"), 60000.0, MarketConfig(), random.Random(seed)
    )
    market.open(0)
    mids, trades = [], 0
    for step in range(steps):
        trades += sum(len(o.fills) for o in market.step(step))
        mids.append(market.mid)
        bids, asks = engine.depth(1)
        if bids and asks:
            assert bids[0][0] < asks[0][0]
    return engine, mids, trades


def test_same_seed_gives_the_same_market() -> None:
    one, mids_one, _ = run(seed=11, steps=500)
    two, mids_two, _ = run(seed=11, steps=500)
    assert one.depth() == two.depth()
    assert mids_one == mids_two
    other, _, _ = run(seed=12, steps=500)
    assert other.depth() != one.depth()


def test_market_trades_moves_and_stays_two_sided_and_bounded() -> None:
    engine, mids, trades = run(seed=3, steps=3000)
    assert trades > 100
    assert max(mids) != min(mids)
    bids, asks = engine.depth()
    assert bids
    assert asks
    assert len(bids) + len(asks) < 200  # stale quotes are pruned
    mid = Decimal(repr(mids[-1]))
    assert abs(bids[0][0] - mid) / mid < Decimal("0.01")


def test_public_names_are_exported() -> None:
    assert len(set(venue_pkg.__all__)) == len(venue_pkg.__all__)
    for name in venue_pkg.__all__:
        assert hasattr(venue_pkg, name), name


def test_cli_reports_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert run_venue_cli(port=taken.getsockname()[1], seed=1) == 1
    assert "meltica-trio venue:" in capsys.readouterr().err
