"""Prometheus metrics: every component's statistics, read when scraped.

A :class:`PipelineCollector` turns ``pipe.statistics()`` (and the statistics of the
providers it watches) into metric families at scrape time, so metrics cost the hot
path nothing: no counter is touched per event beyond those ``statistics()`` already
reads. :mod:`._metrics_server` serves it.

Names (``meltica_`` prefix, seconds and ratios in the name, counters end ``_total``)::

    meltica_consumer_handled_total{consumer}         meltica_lane_depth{consumer}
    meltica_consumer_delivery_seconds{consumer,quantile}   (a summary)
    meltica_lane_dropped_total{consumer,delivery_class,reason}
    meltica_provider_frames_total{provider}          meltica_book_state{provider,instrument,state}
    meltica_pool_in_use{pool}    meltica_dlq_recorded_total    meltica_orders_submitted_total

Latencies are summaries built from the project's log-linear histograms: p50, p99
and p99.9 as quantiles (bucket upper bounds, ~6% resolution), ``_sum``/``_count``
over the timed samples (timing is sampled under load), and the maximum as a gauge
``..._max_seconds``. docs/how-to/metrics-and-logs.md lists every metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Final, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from meltica_trio.events import BookState

if TYPE_CHECKING:
    from meltica_trio._pipeline import PipelineStatistics
    from meltica_trio.consumers import ConsumerStatistics
    from meltica_trio.providers import ProviderStatistics

    from ._histogram import LatencySummary

GAUGE: Final = "gauge"
COUNTER: Final = "counter"

# Each table maps a statistics field to (metric type, help). The metric is
# meltica_<section>_<field> (counters get _total). Fields handled otherwise (labels,
# latencies, durations in ns) are listed in _SPECIAL so a test can check that every
# field of every record is exported one way or the other.

PIPELINE: Final = {
    "routing_version": (GAUGE, "Routing table version in force."),
    "subscribers": (GAUGE, "Consumers registered."),
    "intake_depth": (GAUGE, "Events published and not yet taken by the dispatcher."),
}
RECYCLER: Final = {
    "double_puts": (COUNTER, "Recycles refused because the lease had already ended."),
}
ORDERING: Final = {
    "streams": (GAUGE, "Streams with ordering state."),
    "held": (GAUGE, "Events held in reorder windows."),
    "released": (COUNTER, "Events released downstream by the ordering stage."),
    "stale_dropped": (COUNTER, "Stale duplicates dropped."),
    "gaps": (COUNTER, "Sequence breaks detected."),
    "gap_dropped": (COUNTER, "Deltas dropped at a gap or while awaiting a snapshot."),
    "holes_skipped": (COUNTER, "Sequence holes given up on."),
    "expired_streams": (COUNTER, "Streams forgotten after their idle TTL."),
}
FANOUT: Final = {
    "events": (COUNTER, "Events routed."),
    "deliveries": (COUNTER, "Envelopes put in lanes (originals and duplicates)."),
    "unrouted": (COUNTER, "Events no subscriber wanted."),
    "max_subscribers": (GAUGE, "Widest fan-out seen."),
}
LANE: Final = {
    "capacity": (GAUGE, "Non-critical events the lane holds before dropping."),
    "depth": (GAUGE, "Events queued."),
    "critical_backlog": (GAUGE, "Critical events queued (never dropped)."),
    "delivered": (COUNTER, "Events handed to the consumer."),
    "high_water": (GAUGE, "Deepest the lane has been."),
    "books_awaiting_snapshot": (GAUGE, "Books whose deltas wait for a snapshot."),
}
LANE_DROPPED: Final = {
    # field: (delivery class, reason)
    "coalesced": ("latest", "coalesced"),
    "overflowed": ("latest", "overflowed"),
    "skipped": ("sequenced", "skipped"),
}
CONSUMER: Final = {
    "handled": (COUNTER, "Events passed to the consumer function."),
    "failed": (COUNTER, "Calls that raised (each one is in the DLQ)."),
    "skipped_old_version": (COUNTER, "Market data skipped as routed under an old version."),
    "min_version": (GAUGE, "Lowest routing version whose market data it accepts."),
}
POOL: Final = {
    "capacity": (GAUGE, "Objects the pool may lend at once."),
    "in_use": (GAUGE, "Pooled objects lent out."),
    "high_water": (GAUGE, "Most pooled objects lent at once."),
    "acquired": (COUNTER, "Leases granted."),
    "recycled": (COUNTER, "Pooled objects taken back."),
    "waits": (COUNTER, "Acquires that found the pool empty and waited."),
    "exhausted": (COUNTER, "Waits that ended at the deadline with no object."),
    "heap_fallbacks": (COUNTER, "Objects allocated from the heap on exhaustion."),
    "heap_in_use": (GAUGE, "Heap-allocated objects lent out."),
}
DLQ: Final = {
    "held": (GAUGE, "Dead letters in memory."),
    "recorded": (COUNTER, "Dead letters recorded."),
    "dropped": (COUNTER, "Dead letters dropped from memory for room."),
    "journal_written": (COUNTER, "Dead letters appended to the DLQ file."),
    "journal_failed": (COUNTER, "Dead letters the DLQ file lost."),
}
CONTROL: Final = {
    "received": (COUNTER, "Control commands received."),
    "accepted": (COUNTER, "Control commands accepted."),
    "refused": (COUNTER, "Control commands refused."),
    "failed": (COUNTER, "Control commands that failed inside their owner."),
    "queued": (GAUGE, "Control commands waiting."),
}
MERGE: Final = {
    "rules": (GAUGE, "Merge rules configured."),
    "opened": (COUNTER, "Merge windows opened."),
    "closed_by_time": (COUNTER, "Merge windows closed by time."),
    "closed_by_count": (COUNTER, "Merge windows closed by count."),
    "emitted": (COUNTER, "Merged events emitted."),
    "suppressed": (COUNTER, "Closed windows that missed an expected provider."),
    "fragments": (COUNTER, "Fragments taken into windows."),
    "late": (COUNTER, "Fragments dropped as late."),
    "ignored": (COUNTER, "Events of a rule's key not taken."),
    "pool_short": (COUNTER, "Fragments not taken for want of an envelope."),
    "discarded_on_restart": (COUNTER, "Open windows discarded by a restart."),
    "discarded_on_reconfigure": (COUNTER, "Open windows discarded by a rule change."),
    "drained": (COUNTER, "Open windows discarded by a drain."),
    "fragments_discarded": (COUNTER, "Fragments recycled with a discarded window."),
    "open_windows": (GAUGE, "Merge windows open."),
    "held": (GAUGE, "Fragments held in open windows."),
}
ORDERS: Final = {
    "submitted": (COUNTER, "New orders accepted."),
    "venue_orders": (COUNTER, "Orders the venues are known to hold."),
    "duplicates_refused": (COUNTER, "Duplicate submits answered from the ledger."),
    "claimed_elsewhere": (COUNTER, "Orders not sent: another gateway held the key."),
    "retries": (COUNTER, "Venue calls repeated after a failure."),
    "reconciled": (COUNTER, "Uncertain placements settled without resending."),
    "exec_reports": (COUNTER, "Execution reports delivered."),
    "invalid_transitions": (COUNTER, "Venue updates the state machine refused."),
    "rejected": (COUNTER, "Orders ended rejected."),
    "unresolved": (COUNTER, "Orders whose placement stayed unknown after every attempt."),
    "duplicate_updates": (COUNTER, "Venue updates that brought nothing new."),
    "unknown_updates": (COUNTER, "Venue updates for untracked orders."),
    "tracked_orders": (GAUGE, "Orders tracked."),
    "queued": (GAUGE, "Venue jobs waiting for a worker."),
}
PROVIDER: Final = {
    "connected": (GAUGE, "1 while a connection is up."),
    "connect_attempts": (COUNTER, "Connections tried."),
    "connects": (COUNTER, "Connections opened."),
    "reconnects": (COUNTER, "Connections opened after the first."),
    "rotations": (COUNTER, "Connections replaced on age."),
    "frames": (COUNTER, "Messages received."),
    "oversized_frames": (COUNTER, "Messages dropped for size."),
    "malformed_frames": (COUNTER, "Messages that were not JSON."),
    "decode_errors": (COUNTER, "Messages the venue parser rejected."),
    "venue_errors": (COUNTER, "Error answers from the venue."),
    "pings": (COUNTER, "Heartbeats sent."),
    "pongs": (COUNTER, "Heartbeat answers received."),
    "unknown_instrument": (COUNTER, "Records of unconfigured instruments dropped."),
    "snapshots_requested": (COUNTER, "Fresh books asked for."),
    "snapshot_failures": (COUNTER, "Failed REST snapshot attempts."),
    "resyncs_requested": (COUNTER, "Resyncs the pipeline asked for."),
    "published": (COUNTER, "Events published."),
    "give_ups": (COUNTER, "Times reconnecting stopped."),
}
BOOK: Final = {
    "last_seq": (GAUGE, "Last update id applied."),
    "bid_levels": (GAUGE, "Bid levels in the book."),
    "ask_levels": (GAUGE, "Ask levels in the book."),
    "buffered": (GAUGE, "Diffs waiting for a snapshot."),
    "applied": (COUNTER, "Diffs applied."),
    "dropped": (COUNTER, "Diffs not applied."),
    "gaps": (COUNTER, "Sequence breaks detected."),
    "resyncs": (COUNTER, "Times the book was discarded for a fresh snapshot."),
    "snapshots": (COUNTER, "Snapshots loaded."),
    "snapshot_requests": (COUNTER, "Snapshots requested."),
    "heartbeats": (COUNTER, "Venue keep-alives."),
    "seq_resets": (COUNTER, "Venue sequence resets applied."),
}
BOOK_CHECKSUMS: Final = {
    "checksum_ok": "ok",
    "checksum_failed": "failed",
    "checksum_skipped": "skipped",
}

SPECIAL: Final = {
    "PipelineStatistics": {
        "ordering", "fanout", "lanes", "consumers", "pool", "dlq", "control", "merge", "orders",
    },
    "FanoutStatistics": {"to_last_lane", "start_spread"},
    "LaneStatistics": {"consumer_id", "oldest_age_ns", *LANE_DROPPED},
    "ConsumerStatistics": {"consumer_id", "delivery", "handler"},
    "PoolStatistics": {"name", "utilisation"},
    "MergeStatistics": {"watermark_lag"},
    "ProviderStatistics": {"provider", "books"},
    "BookStatistics": {"provider", "instrument", "state", *BOOK_CHECKSUMS},
}  # fmt: skip
"""Fields exported otherwise than through a table (see the module's code)."""


class StatisticsSource(Protocol):
    """What the collector reads: a pipeline (``meltica_trio.Pipeline`` is one)."""

    def statistics(self) -> PipelineStatistics:
        """A snapshot of every component."""
        ...


class ProviderSource(Protocol):
    """A provider whose statistics are exported (``meltica_trio.providers.Provider``)."""

    def statistics(self) -> ProviderStatistics:
        """The provider's counters and its books'."""
        ...


class _Scrape:
    """The metric families of one scrape, created on first use, in order."""

    def __init__(self) -> None:
        self.families: dict[str, Metric] = {}
        self._simple: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}

    def add(self, kind: str, name: str, doc: str, labels: Mapping[str, str], value: float) -> None:
        family = self._simple.get(name)
        if family is None:
            cls = CounterMetricFamily if kind == COUNTER else GaugeMetricFamily
            family = self._simple[name] = cls(name, doc, labels=list(labels))
            self.families[name] = family
        family.add_metric(list(labels.values()), value)

    def table(
        self,
        section: str,
        table: Mapping[str, tuple[str, str]],
        record: object,
        labels: Mapping[str, str],
    ) -> None:
        for field, (kind, doc) in table.items():
            value = getattr(record, field)
            if value is not None:  # a book with no sequence yet has no last_seq
                self.add(kind, f"meltica_{section}_{field}", doc, labels, float(value))

    def latency(
        self, name: str, doc: str, summary: LatencySummary, labels: Mapping[str, str]
    ) -> None:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = SummaryMetricFamily(name, doc, labels=list(labels))
        assert isinstance(family, SummaryMetricFamily)
        total_s = summary.mean_ns * summary.count / 1e9
        family.add_metric(list(labels.values()), summary.count, total_s)
        quantiles = (("0.5", summary.p50_ns), ("0.99", summary.p99_ns), ("0.999", summary.p999_ns))
        for quantile, ns in quantiles:
            family.samples.append(Sample(name, {**labels, "quantile": quantile}, ns / 1e9))
        self.add(GAUGE, f"{name.removesuffix('_seconds')}_max_seconds",
                 f"{doc} Longest seen.", labels, summary.max_ns / 1e9)  # fmt: skip


class PipelineCollector(Collector):
    """A prometheus-client collector of a pipeline's statistics, read at scrape time.

    Register it in a ``CollectorRegistry`` of your own, or let :func:`serve_metrics`
    do it. Providers are not part of ``pipe.statistics()``; :meth:`watch` adds one.

    Args:
        source: the pipeline (anything with a ``statistics()`` like it).
    """

    def __init__(self, source: StatisticsSource) -> None:
        self._source = source
        self._providers: list[ProviderSource] = []

    def watch(self, provider: ProviderSource) -> None:
        """Export ``provider``'s statistics and its books' too (until :meth:`unwatch`)."""
        if provider not in self._providers:
            self._providers.append(provider)

    def unwatch(self, provider: ProviderSource) -> None:
        """Stop exporting ``provider`` (a no-op if it was not watched)."""
        if provider in self._providers:
            self._providers.remove(provider)

    def collect(self) -> Iterator[Metric]:
        """Every metric family, from one ``statistics()`` snapshot."""
        scrape = _Scrape()
        _pipeline(scrape, self._source.statistics())
        for provider in self._providers:
            _provider(scrape, provider.statistics())
        return iter(scrape.families.values())

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the families depend on what is running at scrape time."""
        return ()


def _pipeline(scrape: _Scrape, stats: PipelineStatistics) -> None:
    scrape.table("pipeline", PIPELINE, stats, {})
    scrape.table("recycler", RECYCLER, stats, {})
    scrape.table("ordering", ORDERING, stats.ordering, {})
    scrape.table("fanout", FANOUT, stats.fanout, {})
    scrape.latency(
        "meltica_fanout_to_last_lane_seconds",
        "Wall time from ingest to the last lane, per event.",
        stats.fanout.to_last_lane,
        {},
    )
    scrape.latency(
        "meltica_fanout_start_spread_seconds",
        "Wall time between the first and last consumer starting on one event (sampled).",
        stats.fanout.start_spread,
        {},
    )
    for lane in stats.lanes:
        labels = {"consumer": lane.consumer_id}
        scrape.table("lane", LANE, lane, labels)
        scrape.add(GAUGE, "meltica_lane_oldest_age_seconds", "Age of the oldest queued event.",
                   labels, lane.oldest_age_ns / 1e9)  # fmt: skip
        for field, (delivery_class, reason) in LANE_DROPPED.items():
            scrape.add(
                COUNTER,
                "meltica_lane_dropped",
                "Events not delivered: LATEST coalesced or overflowed, SEQUENCED skipped.",
                {**labels, "delivery_class": delivery_class, "reason": reason},
                getattr(lane, field),
            )
    for consumer in stats.consumers:
        _consumer(scrape, consumer)
    scrape.table("pool", POOL, stats.pool, {"pool": stats.pool.name})
    scrape.add(GAUGE, "meltica_pool_utilisation_ratio", "in_use / capacity.",
               {"pool": stats.pool.name}, stats.pool.utilisation)  # fmt: skip
    scrape.table("dlq", DLQ, stats.dlq, {})
    scrape.table("control", CONTROL, stats.control, {})
    scrape.table("merge", MERGE, stats.merge, {})
    scrape.add(GAUGE, "meltica_merge_watermark_lag_seconds",
               "How far the oldest open window's opening is behind the merge's now.",
               {}, stats.merge.watermark_lag)  # fmt: skip
    scrape.table("orders", ORDERS, stats.orders, {})


def _consumer(scrape: _Scrape, consumer: ConsumerStatistics) -> None:
    labels = {"consumer": consumer.consumer_id}
    scrape.table("consumer", CONSUMER, consumer, labels)
    scrape.latency(
        "meltica_consumer_delivery_seconds",
        "Wall time from ingest to the consumer function's start (sampled under load).",
        consumer.delivery,
        labels,
    )
    scrape.latency(
        "meltica_consumer_handler_seconds",
        "Time spent in the consumer function per event (sampled under load).",
        consumer.handler,
        labels,
    )


def _provider(scrape: _Scrape, stats: ProviderStatistics) -> None:
    scrape.table("provider", PROVIDER, stats, {"provider": stats.provider})
    for book in stats.books:
        labels = {"provider": book.provider, "instrument": book.instrument}
        scrape.table("book", BOOK, book, labels)
        for state in BookState:
            scrape.add(GAUGE, "meltica_book_state", "1 for the book's published state.",
                       {**labels, "state": state.value}, float(book.state is state))  # fmt: skip
        for field, result in BOOK_CHECKSUMS.items():
            scrape.add(COUNTER, "meltica_book_checksums", "Venue checksums by result.",
                       {**labels, "result": result}, getattr(book, field))  # fmt: skip
