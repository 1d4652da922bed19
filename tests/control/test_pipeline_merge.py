"""The windowed merge through a running pipeline: merged views, suppression, run-time rules."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import trio
import trio.testing

from meltica_trio import (
    ConsumerContext,
    Event,
    Kind,
    MergedTopOfBook,
    MergeRule,
    Pipeline,
    Ticker,
    VenueTop,
)
from meltica_trio.testing import assert_balanced, open_test_pipeline

BTC_TOP = MergeRule(
    name="btc-top",
    instrument="BTC-USDT",
    kind=Kind.TICKER,
    providers=frozenset({"binance", "okx"}),
    window=1.0,
    max_count=10,
)


def _open(**overrides: Any) -> AbstractAsyncContextManager[Pipeline]:
    overrides.setdefault("merges", [BTC_TOP])
    return open_test_pipeline(**overrides)


@attrs.frozen
class Seen:
    kind: Kind
    provider: str
    instrument: str
    seq: int | None
    routing_version: int
    payload: object


@attrs.define(eq=False)
class Recorder:
    """A sync consumer that keeps what it saw (never the envelope itself)."""

    seen: list[Seen] = attrs.field(factory=list)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        self.seen.append(
            Seen(
                event.kind,
                event.provider,
                event.instrument,
                event.seq,
                event.routing_version,
                event.payload,
            )
        )

    def merged(self) -> list[MergedTopOfBook]:
        tops = [seen.payload for seen in self.seen if seen.kind is Kind.MERGED]
        assert all(isinstance(top, MergedTopOfBook) for top in tops)
        return tops  # type: ignore[return-value]


async def _ticker(
    pipe: Pipeline, provider: str, bid: str, ask: str, instrument: str = "BTC-USDT"
) -> None:
    payload = Ticker(bid_price=bid, bid_size="1", ask_price=ask, ask_size="2")
    event = pipe.new_event(
        kind=Kind.TICKER, provider=provider, instrument=instrument, payload=payload
    )
    await pipe.publish(event)


async def _merged_view(pipe: Pipeline, recorder: Recorder, instrument: str = "BTC-USDT") -> int:
    """Register a consumer that wants nothing but the merged view; returns the version."""
    await pipe.subscribe("view", recorder, kinds=())
    reply = await pipe.control.subscribe_merged("view", instrument)
    assert reply.ack.accepted
    assert reply.result.ok
    return pipe.routing.version


async def test_a_merged_subscriber_gets_one_consolidated_top_of_book_per_complete_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    view, raw = Recorder(), Recorder()
    async with _open() as pipe:
        await _merged_view(pipe, view)
        await pipe.subscribe("raw", raw, kinds=Kind.TICKER)
        start = trio.current_time()
        for provider, bid, ask in [
            ("binance", "99", "101.5"),
            ("okx", "100.5", "102"),
            ("binance", "100", "101"),  # the newest binance top wins
        ]:
            await _ticker(pipe, provider, bid, ask)
            # Each is handled before the next: a lagging lane would coalesce tickers.
            await trio.testing.wait_all_tasks_blocked()
        assert view.seen == []  # the window is still open
        assert pipe.statistics().merge.open_windows == 1

        await trio.sleep(BTC_TOP.window)
        await pipe.wait_idle()

        assert trio.current_time() - start >= BTC_TOP.window
        (top,) = view.merged()
        assert top.venues == (
            VenueTop(provider="binance", bid=("100", "1"), ask=("101", "2")),
            VenueTop(provider="okx", bid=("100.5", "1"), ask=("102", "2")),
        )
        assert (top.best_bid, top.best_bid_provider) == (("100.5", "1"), "okx")
        assert (top.best_ask, top.best_ask_provider) == (("101", "2"), "binance")
        (merged,) = view.seen
        assert (merged.provider, merged.instrument, merged.seq) == ("btc-top", "BTC-USDT", 1)
        # The fragments went on to their own subscriber untouched, and to no one else.
        assert [(s.kind, s.provider) for s in raw.seen] == [
            (Kind.TICKER, "binance"),
            (Kind.TICKER, "okx"),
            (Kind.TICKER, "binance"),
        ]
        merge = pipe.statistics().merge
        assert (merge.opened, merge.closed_by_time, merge.emitted, merge.suppressed) == (
            1,
            1,
            1,
            0,
        )
        assert (merge.fragments, merge.held, merge.open_windows) == (3, 0, 0)
    assert_balanced(pipe)


async def test_a_window_missing_a_provider_is_suppressed_never_emitted_partially(
    autojump_clock: trio.testing.MockClock,
) -> None:
    view = Recorder()
    async with _open() as pipe:
        await _merged_view(pipe, view)
        await _ticker(pipe, "binance", "100", "101")
        await _ticker(pipe, "binance", "100.1", "101")
        await trio.sleep(BTC_TOP.window)
        await pipe.wait_idle()
        assert view.seen == []
        merge = pipe.statistics().merge
        assert (merge.suppressed, merge.emitted, merge.closed_by_time) == (1, 0, 1)

        # The next complete window is emitted as usual.
        await _ticker(pipe, "okx", "100.2", "100.9")
        await _ticker(pipe, "binance", "100.3", "101")
        await trio.sleep(BTC_TOP.window)
        await pipe.wait_idle()
        (top,) = view.merged()
        assert (top.best_bid_provider, top.best_ask_provider) == ("binance", "okx")
        assert pipe.statistics().merge.emitted == 1
    assert_balanced(pipe)


async def test_configure_merge_at_run_time_adds_a_rule_subscribers_can_use_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    view = Recorder()
    async with _open() as pipe:
        await pipe.subscribe("view", view, kinds=())
        refused = await pipe.control.subscribe_merged("view", "ETH-USDT")
        assert refused.ack.reason == "no merge rule for 'ETH-USDT'; configure one first"

        reply = await pipe.control.configure_merge(
            name="eth-top",
            instrument="ETH-USDT",
            kind="ticker",
            providers=["binance", "okx"],
            window=0.5,
            max_count=2,
        )
        assert reply.ack.accepted
        assert reply.result.detail == (("rule", "eth-top"), ("state", "added"))
        assert pipe.statistics().merge.rules == 2
        merged = await pipe.control.subscribe_merged("view", "ETH-USDT", rule="eth-top")
        assert merged.result.ok

        start = trio.current_time()
        await _ticker(pipe, "okx", "2000", "2001", instrument="ETH-USDT")
        await _ticker(pipe, "binance", "2000.5", "2002", instrument="ETH-USDT")
        await trio.testing.wait_all_tasks_blocked()

        assert trio.current_time() == start  # closed by count, not by time
        (seen,) = view.seen
        assert (seen.kind, seen.provider, seen.instrument) == (Kind.MERGED, "eth-top", "ETH-USDT")
        (top,) = view.merged()
        assert top.best_bid == ("2000.5", "1")
        assert top.best_ask == ("2001", "2")
        merge = pipe.statistics().merge
        assert (merge.closed_by_count, merge.closed_by_time, merge.held) == (1, 0, 0)
    assert_balanced(pipe)


async def test_merged_events_are_stamped_with_the_routing_version_current_when_they_go_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    view, raw = Recorder(), Recorder()
    async with _open() as pipe:
        await _merged_view(pipe, view)
        await pipe.subscribe("raw", raw, kinds=Kind.TICKER)
        fragments_version = pipe.routing.version
        await _ticker(pipe, "binance", "100", "101")
        await _ticker(pipe, "okx", "100", "101")
        await trio.testing.wait_all_tasks_blocked()

        # The routing changes while the window is open.
        await pipe.subscribe("late", Recorder(), kinds=Kind.TRADE)
        current = pipe.routing.version
        assert current == fragments_version + 1
        await trio.sleep(BTC_TOP.window)
        await pipe.wait_idle()

        assert [s.routing_version for s in raw.seen] == [fragments_version] * 2
        (merged,) = view.seen
        assert merged.routing_version == current
    assert_balanced(pipe)


async def test_a_merged_view_survives_a_later_change_of_the_consumers_filters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    view = Recorder()
    async with _open() as pipe:
        await _merged_view(pipe, view)
        await pipe.control.subscribe("view", kinds=Kind.TRADE)
        subscription = pipe.routing.subscription("view")
        assert subscription is not None
        assert subscription.merged == frozenset({"BTC-USDT"})
        await _ticker(pipe, "binance", "100", "101")
        await _ticker(pipe, "okx", "100", "101")
        await trio.sleep(BTC_TOP.window)
        await pipe.wait_idle()
        assert [s.kind for s in view.seen] == [Kind.MERGED]
    assert_balanced(pipe)


async def test_fragments_held_in_an_open_window_go_back_when_the_pipeline_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _open() as pipe:
        await _merged_view(pipe, Recorder())
        await _ticker(pipe, "binance", "100", "101")
        await trio.testing.wait_all_tasks_blocked()
        stats = pipe.statistics()
        assert (stats.merge.held, stats.pool.in_use) == (1, 1)
    assert pipe.statistics().merge.drained == 1
    assert_balanced(pipe)
