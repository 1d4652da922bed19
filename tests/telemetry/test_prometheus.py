"""The Prometheus endpoint: every statistic exported, typed right, scraped over a real socket."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

import attrs
import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from meltica_trio import (
    BookState,
    ConsumerContext,
    Event,
    Kind,
    PipelineCollector,
    PipelineStatistics,
    Side,
    Ticker,
    Trade,
    serve_metrics,
)
from meltica_trio.bus import ControlStatistics, LaneStatistics
from meltica_trio.consumers import ConsumerStatistics
from meltica_trio.dispatcher import FanoutStatistics, OrderingStatistics
from meltica_trio.lifecycle import PoolStatistics
from meltica_trio.orchestrator import MergeStatistics
from meltica_trio.orders import GatewayStatistics
from meltica_trio.providers import BookStatistics, ProviderStatistics
from meltica_trio.telemetry import DeadLetterStatistics, LatencySummary
from meltica_trio.telemetry import _prometheus as prom
from meltica_trio.testing import assert_balanced, open_test_pipeline

TABLES: dict[type, list[dict[str, Any]]] = {
    PipelineStatistics: [prom.PIPELINE, prom.RECYCLER],
    OrderingStatistics: [prom.ORDERING],
    FanoutStatistics: [prom.FANOUT],
    LaneStatistics: [prom.LANE],
    ConsumerStatistics: [prom.CONSUMER],
    PoolStatistics: [prom.POOL],
    DeadLetterStatistics: [prom.DLQ],
    ControlStatistics: [prom.CONTROL],
    MergeStatistics: [prom.MERGE],
    GatewayStatistics: [prom.ORDERS],
    ProviderStatistics: [prom.PROVIDER],
    BookStatistics: [prom.BOOK],
}


@pytest.mark.parametrize("record", list(TABLES), ids=lambda cls: cls.__name__)
def test_every_field_of_every_statistics_record_is_exported(record: type) -> None:
    fields = {field.name for field in attrs.fields(record)}
    exported: set[str] = set().union(*TABLES[record])
    special = prom.SPECIAL.get(record.__name__, set())
    assert not exported & special
    # A field added to a record and to neither set fails here: map it in _prometheus.py.
    assert exported | special == fields


def test_the_pipeline_record_holds_no_component_the_collector_skips() -> None:
    nested = {
        field.name
        for field in attrs.fields(PipelineStatistics)
        if field.name not in prom.PIPELINE and field.name not in prom.RECYCLER
    }
    assert nested == prom.SPECIAL["PipelineStatistics"]


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(families: dict[str, Any], sample: str, **labels: str) -> float:
    """The one sample named ``sample`` (``_total``, ``_count``... included) with ``labels``."""
    matches = [
        s.value
        for family in families.values()
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matches) == 1, (sample, labels, matches)
    return float(matches[0])


def _trade(pipe: Any, seq: int) -> Event:
    payload = Trade(price="100.5", size="1", side=Side.BUY, trade_id=str(seq), trade_ts=seq)
    return pipe.new_event(  # type: ignore[no-any-return]
        kind=Kind.TRADE, provider="sim", instrument="BTC-USDT", seq=seq, payload=payload
    )


async def _scrape(url: str, accept: str | None = None) -> httpx.Response:
    headers = {"accept": accept} if accept else {}
    async with httpx.AsyncClient() as client:
        return await client.get(url, headers=headers)


async def test_a_scrape_over_localhost_reports_the_running_pipeline() -> None:
    def ok(event: Event, ctx: ConsumerContext) -> None:
        pass

    def failing(event: Event, ctx: ConsumerContext) -> None:
        if event.seq == 2:
            raise ValueError("bad trade")

    async with open_test_pipeline(metrics_port=0) as pipe:
        assert pipe.metrics is not None
        assert pipe.metrics.url.startswith("http://127.0.0.1:")
        assert pipe.metrics.url.endswith("/metrics")
        await pipe.subscribe("ok", ok)
        await pipe.subscribe("failing", failing)
        for seq in (1, 2, 3):
            await pipe.publish(_trade(pipe, seq))
        await pipe.wait_idle()
        response = await _scrape(pipe.metrics.url)
    assert_balanced(pipe)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = _families(response.text)
    assert _value(families, "meltica_fanout_events_total") == 3
    assert _value(families, "meltica_fanout_deliveries_total") == 6
    assert _value(families, "meltica_consumer_handled_total", consumer="ok") == 3
    assert _value(families, "meltica_consumer_failed_total", consumer="ok") == 0
    assert _value(families, "meltica_consumer_failed_total", consumer="failing") == 1
    assert _value(families, "meltica_lane_delivered_total", consumer="failing") == 3
    assert _value(families, "meltica_dlq_recorded_total") == 1
    assert _value(families, "meltica_pipeline_subscribers") == 2
    assert _value(families, "meltica_pool_in_use", pool="pipeline") == 0
    assert families["meltica_fanout_events"].type == "counter"
    assert families["meltica_lane_depth"].type == "gauge"
    # Latencies are summaries with quantiles, a count of timed samples, and a max gauge.
    delivery = families["meltica_consumer_delivery_seconds"]
    assert delivery.type == "summary"
    count = _value(families, "meltica_consumer_delivery_seconds_count", consumer="ok")
    assert count == 3
    p99 = _value(families, "meltica_consumer_delivery_seconds", consumer="ok", quantile="0.99")
    longest = _value(families, "meltica_consumer_delivery_max_seconds", consumer="ok")
    assert 0 < p99 <= longest
    # The process and GC collectors are served beside the pipeline's.
    assert "process_resident_memory_bytes" in families
    assert "python_gc_collections" in families


async def test_openmetrics_is_served_to_a_scraper_that_asks_for_it() -> None:
    async with open_test_pipeline(metrics_port=0) as pipe:
        assert pipe.metrics is not None
        response = await _scrape(pipe.metrics.url, "application/openmetrics-text; version=1.0.0")
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    assert "meltica_fanout_events_total 0.0" in response.text


async def test_other_paths_and_methods_are_refused() -> None:
    async with open_test_pipeline(metrics_port=0) as pipe, httpx.AsyncClient() as client:
        assert pipe.metrics is not None
        root = pipe.metrics.url.removesuffix("/metrics")
        missing = await client.get(root + "/nothing")
        posted = await client.post(pipe.metrics.url)
        head = await client.head(pipe.metrics.url)
        assert pipe.metrics.scrapes == 1  # only the HEAD produced metrics
    assert missing.status_code == 404
    assert posted.status_code == 405
    assert head.status_code == 200
    assert head.content == b""


async def test_the_endpoint_stops_with_the_pipeline() -> None:
    async with open_test_pipeline(metrics_port=0) as pipe:
        assert pipe.metrics is not None
        url = pipe.metrics.url
        assert (await _scrape(url)).status_code == 200
    with pytest.raises(httpx.ConnectError):
        await _scrape(url)


async def test_without_a_port_no_endpoint_runs() -> None:
    async with open_test_pipeline() as pipe:
        assert pipe.metrics is None


async def test_two_pipelines_in_one_process_serve_their_own_metrics() -> None:
    def ok(event: Event, ctx: ConsumerContext) -> None:
        pass

    async with open_test_pipeline(metrics_port=0) as a, open_test_pipeline(metrics_port=0) as b:
        assert a.metrics is not None
        assert b.metrics is not None
        await a.subscribe("only-in-a", ok)
        text_a = (await _scrape(a.metrics.url)).text
        text_b = (await _scrape(b.metrics.url)).text
    assert 'consumer="only-in-a"' in text_a
    assert 'consumer="only-in-a"' not in text_b


async def test_a_taken_port_fails_the_pipeline_open() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.RaisesGroup(OSError, flatten_subgroups=True):
            async with open_test_pipeline(metrics_port=port):
                pytest.fail("the pipeline opened on a taken port")  # pragma: no cover


class _CountingSource:
    """A pipeline's statistics, counting reads, with lanes and consumers overridden."""

    def __init__(self, stats: PipelineStatistics) -> None:
        self.stats = stats
        self.reads = 0

    def statistics(self) -> PipelineStatistics:
        self.reads += 1
        return self.stats


async def _base_statistics() -> PipelineStatistics:
    async with open_test_pipeline() as pipe:
        return pipe.statistics()


def _collect(collector: PipelineCollector) -> dict[str, Any]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return {family.name: family for family in registry.collect()}


def _samples(family: Any) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}


async def test_statistics_are_read_at_scrape_time_only() -> None:
    source = _CountingSource(await _base_statistics())
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_metrics, PipelineCollector(source))
        await trio.sleep(0.05)
        assert source.reads == 0  # nothing runs between scrapes
        await _scrape(server.url)
        await _scrape(server.url)
        assert source.reads == 2
        assert server.scrapes == 2
        nursery.cancel_scope.cancel()


async def test_lane_losses_are_labelled_with_their_delivery_class() -> None:
    base = await _base_statistics()
    lane = LaneStatistics(
        consumer_id="slow",
        capacity=8,
        depth=8,
        critical_backlog=1,
        delivered=100,
        coalesced=5,
        skipped=7,
        overflowed=2,
        high_water=9,
        oldest_age_ns=1_500_000_000,
        books_awaiting_snapshot=1,
    )
    families = _collect(PipelineCollector(_CountingSource(attrs.evolve(base, lanes=(lane,)))))
    assert _samples(families["meltica_lane_dropped"]) == {
        (("consumer", "slow"), ("delivery_class", "latest"), ("reason", "coalesced")): 5,
        (("consumer", "slow"), ("delivery_class", "latest"), ("reason", "overflowed")): 2,
        (("consumer", "slow"), ("delivery_class", "sequenced"), ("reason", "skipped")): 7,
    }
    assert _samples(families["meltica_lane_oldest_age_seconds"]) == {(("consumer", "slow"),): 1.5}
    assert _samples(families["meltica_lane_critical_backlog"]) == {(("consumer", "slow"),): 1}


async def test_latency_summaries_convert_nanoseconds_to_seconds() -> None:
    base = await _base_statistics()
    summary = LatencySummary(
        count=4, p50_ns=1_000, p99_ns=2_000_000, p999_ns=3_000_000, max_ns=4_000_000, mean_ns=500.0
    )
    consumer = ConsumerStatistics(
        consumer_id="c",
        handled=4,
        failed=0,
        skipped_old_version=0,
        min_version=0,
        delivery=summary,
        handler=summary,
    )
    stats = attrs.evolve(base, consumers=(consumer,))
    family = _collect(PipelineCollector(_CountingSource(stats)))[
        "meltica_consumer_handler_seconds"
    ]
    values = {(s.name, s.labels.get("quantile")): s.value for s in family.samples}
    assert values == {
        ("meltica_consumer_handler_seconds_count", None): 4,
        ("meltica_consumer_handler_seconds_sum", None): pytest.approx(2e-6),
        ("meltica_consumer_handler_seconds", "0.5"): pytest.approx(1e-6),
        ("meltica_consumer_handler_seconds", "0.99"): pytest.approx(2e-3),
        ("meltica_consumer_handler_seconds", "0.999"): pytest.approx(3e-3),
    }


def _book(instrument: str, state: BookState, last_seq: int | None) -> BookStatistics:
    counters = {
        f.name: 0
        for f in attrs.fields(BookStatistics)
        if f.name not in ("provider", "instrument", "state", "last_seq")
    }
    counters.update(applied=40, checksum_ok=3, checksum_failed=1)
    return BookStatistics(
        provider="okx", instrument=instrument, state=state, last_seq=last_seq, **counters
    )


class _FakeProvider:
    def __init__(self, books: Iterable[BookStatistics]) -> None:
        counters = {
            f.name: 0
            for f in attrs.fields(ProviderStatistics)
            if f.name not in ("provider", "connected", "books")
        }
        counters.update(frames=120, reconnects=2)
        self.stats = ProviderStatistics(
            provider="okx", connected=True, books=tuple(books), **counters
        )

    def statistics(self) -> ProviderStatistics:
        return self.stats


async def test_watched_providers_export_their_counters_and_books() -> None:
    collector = PipelineCollector(_CountingSource(await _base_statistics()))
    provider = _FakeProvider(
        [_book("BTC-USDT", BookState.LIVE, 77), _book("ETH-USDT", BookState.SYNCING, None)]
    )
    assert "meltica_provider_frames" not in _collect(collector)
    collector.watch(provider)
    collector.watch(provider)  # watching twice exports once
    families = _collect(collector)
    okx = (("provider", "okx"),)
    assert _samples(families["meltica_provider_frames"]) == {okx: 120}
    assert _samples(families["meltica_provider_reconnects"]) == {okx: 2}
    assert _samples(families["meltica_provider_connected"]) == {okx: 1}
    states = _samples(families["meltica_book_state"])
    live = {labels for labels, value in states.items() if value == 1}
    assert live == {
        (("instrument", "BTC-USDT"), ("provider", "okx"), ("state", "live")),
        (("instrument", "ETH-USDT"), ("provider", "okx"), ("state", "syncing")),
    }
    assert len(states) == 2 * len(BookState)
    # A book without a sequence yet has no last_seq sample rather than a fake 0.
    assert _samples(families["meltica_book_last_seq"]) == {
        (("instrument", "BTC-USDT"), ("provider", "okx")): 77
    }
    checksums = _samples(families["meltica_book_checksums"])
    btc = (("instrument", "BTC-USDT"), ("provider", "okx"))
    assert checksums[(*btc, ("result", "ok"))] == 3
    assert checksums[(*btc, ("result", "failed"))] == 1
    collector.unwatch(provider)
    assert "meltica_provider_frames" not in _collect(collector)


async def test_a_demo_provider_over_real_sockets_is_scraped_with_its_books() -> None:
    # The whole path: simulated venue -> provider watched by the pipeline's endpoint.
    from meltica_trio.providers import BinanceAdapter, Provider, open_network_transport
    from meltica_trio.venue import MarketConfig, VenueConfig, open_venue

    seen = trio.Event()

    def on_ticker(event: Event, ctx: ConsumerContext) -> None:
        if isinstance(event.payload, Ticker):
            seen.set()

    venue_config = VenueConfig(seed=3, market=MarketConfig(rate=200.0))
    async with (
        open_venue(venue_config) as venue,
        open_network_transport() as transport,
        open_test_pipeline(metrics_port=0) as pipe,
        trio.open_nursery() as nursery,
    ):
        assert pipe.metrics is not None
        await pipe.subscribe("tickers", on_ticker, kinds=[Kind.TICKER])
        adapter = BinanceAdapter(
            ["BTC-USDT"], ws_url=venue.ws_url, rest_url=venue.http_url, provider="sim"
        )
        provider = Provider(pipe, adapter, transport)
        pipe.metrics.watch(provider)
        await nursery.start(provider.serve)
        with trio.fail_after(20):
            await seen.wait()
        families = _families((await _scrape(pipe.metrics.url)).text)
        nursery.cancel_scope.cancel()
    assert _value(families, "meltica_provider_connected", provider="sim") == 1
    assert _value(families, "meltica_provider_frames_total", provider="sim") > 0
    assert _value(families, "meltica_consumer_handled_total", consumer="tickers") >= 1
    state = "meltica_book_state"
    assert _value(families, state, provider="sim", instrument="BTC-USDT", state="live") == 1
