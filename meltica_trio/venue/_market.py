"""A synthetic market for one symbol: seeded liquidity providers and takers (sans-I/O).

The mid price follows a geometric random walk. At each step one participant acts:
a liquidity provider places a limit order a few levels from the mid, cancels one of
its orders, or a taker sends a market order. Orders the walk left far behind are
cancelled, so the book stays a few dozen levels deep. The caller owns the time: it
sleeps :meth:`SyntheticMarket.next_delay` seconds between :meth:`SyntheticMarket.step`
calls and publishes the outcomes; the same seed and the same call sequence give the
same book, trades and prices.
"""

from __future__ import annotations

import math
import random
from decimal import ROUND_DOWN, Decimal
from typing import Final

import attrs

from ._matching import MatchingEngine
from ._orders import (
    OrderRequest,
    OrderSide,
    OrderType,
    Outcome,
    UnknownOrderError,
)

__all__ = ["MAKER", "TAKER", "MarketConfig", "SyntheticMarket"]

MAKER: Final = "sim-maker"
"""Owner of the liquidity providers' orders."""

TAKER: Final = "sim-taker"
"""Owner of the takers' orders."""


@attrs.frozen(kw_only=True)
class MarketConfig:
    """How busy and how jumpy the synthetic market is, per symbol.

    Attributes:
        rate: participant actions per second (each a place, cancel or market order).
        volatility: standard deviation of the mid's relative move over one second.
        levels: price levels per side the providers quote around the mid.
        level_spacing_bps: distance between quoted levels, in basis points of the mid.
        notional: mean order size in quote currency.
        taker_share: fraction of actions that are market orders.
        cancel_share: fraction of actions that cancel a resting order.
    """

    rate: float = 20.0
    volatility: float = 0.0002
    levels: int = 10
    level_spacing_bps: float = 1.0
    notional: float = 2000.0
    taker_share: float = 0.15
    cancel_share: float = 0.25


@attrs.define(eq=False)
class SyntheticMarket:
    """Liquidity providers and takers trading one engine's symbol.

    Args:
        engine: the symbol's matching engine.
        tick_size: price increment of the symbol.
        step_size: quantity increment of the symbol.
        mid: the starting mid price.
        config: rate, volatility and mix of actions.
        rng: the seeded dice (one per symbol keeps symbols independent).
    """

    engine: MatchingEngine
    tick_size: Decimal
    step_size: Decimal
    mid: float
    config: MarketConfig
    rng: random.Random
    _resting: dict[int, float] = attrs.field(init=False, factory=dict)

    def next_delay(self) -> float:
        """Seconds until the next action (exponential: a Poisson flow at ``rate``)."""
        return self.rng.expovariate(self.config.rate)

    def open(self, now_ms: int) -> list[Outcome]:
        """Quote every level on both sides around the mid (call once, at start)."""
        levels = range(1, self.config.levels + 1)
        return [self._place(side, level, now_ms) for level in levels for side in OrderSide]

    def step(self, now_ms: int) -> list[Outcome]:
        """Move the mid, then let one participant act; returns what changed."""
        self._walk()
        outcomes = self._prune(now_ms)
        roll = self.rng.random()
        if roll < self.config.taker_share:
            outcomes.append(self._take(now_ms))
        elif roll < self.config.taker_share + self.config.cancel_share and self._resting:
            outcomes.extend(self._cancel(self.rng.choice(sorted(self._resting)), now_ms))
        else:
            side = self.rng.choice((OrderSide.BUY, OrderSide.SELL))
            outcomes.append(self._place(side, self.rng.randint(1, self.config.levels), now_ms))
        return outcomes

    def _walk(self) -> None:
        sigma = self.config.volatility * math.sqrt(1.0 / self.config.rate)
        self.mid *= math.exp(self.rng.gauss(0.0, sigma))

    def _spacing(self) -> float:
        return self.mid * self.config.level_spacing_bps / 10_000

    def _price(self, side: OrderSide, level: int) -> Decimal:
        offset = level * self._spacing()
        raw = self.mid - offset if side is OrderSide.BUY else self.mid + offset
        ticks = Decimal(repr(max(raw, float(self.tick_size)))) / self.tick_size
        return ticks.to_integral_value(ROUND_DOWN) * self.tick_size

    def _size(self) -> Decimal:
        base = self.config.notional * self.rng.uniform(0.2, 1.8) / self.mid
        steps = (Decimal(repr(base)) / self.step_size).to_integral_value(ROUND_DOWN)
        return max(steps, Decimal(1)) * self.step_size

    def _place(self, side: OrderSide, level: int, now_ms: int) -> Outcome:
        price = self._price(side, level)
        request = OrderRequest(
            owner=MAKER, side=side, type=OrderType.LIMIT, quantity=self._size(), price=price
        )
        outcome = self.engine.submit(request, now_ms)
        if outcome.order.is_open:
            self._resting[outcome.order.order_id] = float(price)
        return outcome

    def _take(self, now_ms: int) -> Outcome:
        side = self.rng.choice((OrderSide.BUY, OrderSide.SELL))
        request = OrderRequest(
            owner=TAKER, side=side, type=OrderType.MARKET, quantity=self._size()
        )
        return self.engine.submit(request, now_ms)

    def _cancel(self, order_id: int, now_ms: int) -> list[Outcome]:
        del self._resting[order_id]
        try:
            return [self.engine.cancel(MAKER, order_id=order_id, now_ms=now_ms)]
        except UnknownOrderError:
            return []  # filled meanwhile (by a taker or a client)

    def _prune(self, now_ms: int) -> list[Outcome]:
        """Cancel quotes the mid has left more than twice the quoted depth behind."""
        reach = 2 * self.config.levels * self._spacing()
        stale = [oid for oid, price in self._resting.items() if abs(price - self.mid) > reach]
        return [outcome for oid in stale for outcome in self._cancel(oid, now_ms)]
