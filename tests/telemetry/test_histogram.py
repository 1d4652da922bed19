"""LatencyHistogram: log-linear bucket bounds, percentile accuracy, empty and odd inputs."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meltica_trio.telemetry import LatencyHistogram, LatencySummary
from meltica_trio.telemetry._histogram import _bucket, _upper_bound

RELATIVE_ERROR = 0.07
"""The histogram promises about 6% resolution (16 sub-buckets per power of two)."""

DURATIONS = st.integers(min_value=0, max_value=2**63 - 1)
FRACTIONS = st.sampled_from([0.01, 0.07, 0.25, 0.5, 0.57, 0.75, 0.9, 0.99, 0.999, 1.0])


def _exact_percentile(samples: list[int], fraction: float) -> int:
    """The nearest-rank percentile: the smallest sample with ``fraction`` of all at or below."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(Fraction(str(fraction)) * len(ordered)))
    return ordered[rank - 1]


def _histogram(samples: list[int]) -> LatencyHistogram:
    histogram = LatencyHistogram()
    for ns in samples:
        histogram.record(ns)
    return histogram


@given(DURATIONS)
def test_every_duration_lies_within_its_bucket(ns: int) -> None:
    index = _bucket(ns)
    upper = _upper_bound(index)
    lower = _upper_bound(index - 1) + 1 if index else 0
    assert lower <= ns <= upper
    assert upper - lower <= max(lower, 16) / 16  # the bucket is at most 1/16 of its value


@given(st.integers(min_value=0, max_value=60 * 16 + 15))
def test_a_bucket_upper_bound_falls_in_that_bucket(index: int) -> None:
    assert _bucket(_upper_bound(index)) == index
    assert _bucket(_upper_bound(index) + 1) == index + 1


@pytest.mark.parametrize("ns", [0, 1, 15, 16, 31, 32, 33])
def test_small_durations_have_exact_buckets_or_pairs(ns: int) -> None:
    # Below 32 ns every value has its own bucket; from 32 ns on buckets widen.
    assert _upper_bound(_bucket(ns)) == (ns if ns < 32 else ns | 1)


@given(DURATIONS)
def test_record_counts_a_duration_in_the_bucket_bucket_names(ns: int) -> None:
    # record() inlines _bucket(); a larger second sample makes p50 expose the first's bucket.
    histogram = _histogram([ns, 2**63])
    assert histogram.percentile(0.5) == _upper_bound(_bucket(ns))


@given(st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=300), FRACTIONS)
def test_percentiles_are_within_seven_percent_of_the_exact_percentile(
    samples: list[int], fraction: float
) -> None:
    exact = _exact_percentile(samples, fraction)
    estimate = _histogram(samples).percentile(fraction)
    # Never below the exact value (it is the bucket's upper bound), never far above it.
    assert exact <= estimate <= max(samples)
    assert estimate <= exact * (1 + RELATIVE_ERROR) or estimate - exact <= 1


def test_the_median_of_an_odd_count_is_the_middle_sample() -> None:
    histogram = _histogram([1, 2, 3, 4, 5])
    assert histogram.percentile(0.5) == 3


def test_p99_never_understates_the_tail() -> None:
    # 150 samples: the 149th (nearest rank ceil(148.5)) is the first 2; below 32 ns every
    # value has its own bucket, so the answer is exact.
    histogram = _histogram([1] * 148 + [2, 3])
    assert histogram.percentile(0.99) == 2


@given(st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=200))
def test_summary_counts_max_and_mean_are_exact(samples: list[int]) -> None:
    summary = _histogram(samples).summary()
    assert summary.count == len(samples)
    assert summary.max_ns == max(samples)
    assert summary.mean_ns == pytest.approx(sum(samples) / len(samples))
    assert summary.p50_ns <= summary.p99_ns <= summary.p999_ns <= summary.max_ns


def test_an_empty_histogram_reports_zero_everywhere() -> None:
    histogram = LatencyHistogram()
    assert histogram.percentile(0.5) == 0
    assert histogram.percentile(1.0) == 0
    assert histogram.summary() == LatencySummary(
        count=0, p50_ns=0, p99_ns=0, p999_ns=0, max_ns=0, mean_ns=0.0
    )


def test_negative_durations_count_as_zero_in_every_statistic() -> None:
    # A wall clock stepped back (NTP) yields negative latencies; they must not skew the mean.
    histogram = _histogram([-1_000, 100])
    summary = histogram.summary()
    assert summary.count == 2
    assert summary.p50_ns == 0
    assert summary.max_ns == 100
    assert summary.mean_ns == 50.0


def test_the_largest_int64_duration_is_recorded() -> None:
    histogram = _histogram([2**63 - 1])
    assert histogram.percentile(1.0) == 2**63 - 1
    assert histogram.summary().count == 1
