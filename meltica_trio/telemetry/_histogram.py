"""A log-linear latency histogram: constant memory, about 6% relative resolution."""

from __future__ import annotations

import math
from typing import Final

import attrs

_SUB_BITS: Final = 4
"""Each power of two is split in 2**4 = 16 linear sub-buckets (~6% resolution)."""
_SUB: Final = 1 << _SUB_BITS
_BUCKETS: Final = 64 * _SUB


@attrs.frozen(kw_only=True)
class LatencySummary:
    """Percentiles of a histogram, in nanoseconds (bucket upper bounds)."""

    count: int
    p50_ns: int
    p99_ns: int
    p999_ns: int
    max_ns: int
    mean_ns: float


def _bucket(ns: int) -> int:
    if ns < _SUB:
        return max(ns, 0)
    shift = ns.bit_length() - _SUB_BITS - 1
    return ((shift + 1) << _SUB_BITS) + ((ns >> shift) - _SUB)


def _upper_bound(index: int) -> int:
    if index < _SUB:
        return index
    shift = (index >> _SUB_BITS) - 1
    return (((index & (_SUB - 1)) + _SUB + 1) << shift) - 1


@attrs.define(eq=False)
class LatencyHistogram:
    """Counts of durations in log-linear buckets; ``record`` is O(1) and allocation-free."""

    _counts: list[int] = attrs.field(init=False, factory=lambda: [0] * _BUCKETS)
    _count: int = attrs.field(init=False, default=0)
    _total: int = attrs.field(init=False, default=0)
    _max: int = attrs.field(init=False, default=0)

    def record(self, ns: int) -> None:
        """Count one duration of ``ns`` nanoseconds (negative counts as 0)."""
        # _bucket() inlined: this runs for every timed delivery.
        if ns >= _SUB:
            shift = ns.bit_length() - _SUB_BITS - 1
            self._counts[((shift + 1) << _SUB_BITS) + (ns >> shift) - _SUB] += 1
        else:
            if ns < 0:
                ns = 0  # a clock stepped back: a zero duration, in the mean and max too
            self._counts[ns] += 1
        self._count += 1
        self._total += ns
        if ns > self._max:
            self._max = ns

    def percentile(self, fraction: float) -> int:
        """The bucket upper bound below which ``fraction`` of the samples lie (0 if none)."""
        if not self._count:
            return 0
        # Nearest rank: the smallest sample with at least ``fraction`` of all at or below it.
        # (round() would give p50 of five samples as the second; rounding first to 9 places
        # keeps float noise such as 0.07 * 100 == 7.000000000000001 from adding a rank.)
        rank = max(1, math.ceil(round(fraction * self._count, 9)))
        seen = 0
        for index, count in enumerate(self._counts):
            seen += count
            if seen >= rank:
                return min(_upper_bound(index), self._max)
        return self._max  # pragma: no cover (ranks never exceed the count)

    def summary(self) -> LatencySummary:
        """Count, p50, p99, p99.9, max and mean."""
        return LatencySummary(
            count=self._count,
            p50_ns=self.percentile(0.50),
            p99_ns=self.percentile(0.99),
            p999_ns=self.percentile(0.999),
            max_ns=self._max,
            mean_ns=self._total / self._count if self._count else 0.0,
        )
