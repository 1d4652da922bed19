"""A merged two-venue view: the best bid and ask of BTC-USDT across two venues.

Two simulated venues run on localhost, each with its own seeded market. A provider per
venue streams its book tickers into one pipeline, whose orchestrator merges the two
venues' BTC-USDT tickers in 50 ms windows; one function receives only the merged view
and prints it whenever the consolidated best bid or ask changes.

    python examples/merged_view.py            # runs for 10 seconds
    python examples/merged_view.py --seconds 2
"""

from __future__ import annotations

import argparse

import attrs
import trio

from meltica_trio import (
    BinanceAdapter,
    ConsumerContext,
    Event,
    Kind,
    MergedTopOfBook,
    MergeRule,
    PipelineConfig,
    VenueConfig,
    open_network_transport,
    open_pipeline,
    open_venue,
    serve_provider,
)
from meltica_trio.venue import MarketConfig

VENUES = ("sim-a", "sim-b")

# --8<-- [start:rule]
BTC_TOP = MergeRule(
    name="btc-top",  # becomes the merged events' provider
    instrument="BTC-USDT",
    kind=Kind.TICKER,  # the fragments: each venue's best bid and ask
    providers=VENUES,  # a window missing either venue is suppressed, never half-emitted
    window=0.05,  # seconds from a window's first fragment to its close
    max_count=8,  # ...or as soon as this many fragments arrived
)
# --8<-- [end:rule]


# --8<-- [start:consumer]
@attrs.define(eq=False)
class TopWatcher:
    """Prints the consolidated top of book each time it changes."""

    views: int = 0
    last: tuple[object, ...] = ()

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        top = event.payload
        if not isinstance(top, MergedTopOfBook) or top.best_bid is None or top.best_ask is None:
            return
        self.views += 1
        now = (top.best_bid, top.best_bid_provider, top.best_ask, top.best_ask_provider)
        if now == self.last:
            return
        self.last = now
        (bid, bid_size), (ask, ask_size) = top.best_bid, top.best_ask
        print(
            f"{event.instrument} merged #{event.seq}: "
            f"bid {bid} x {bid_size} on {top.best_bid_provider}, "
            f"ask {ask} x {ask_size} on {top.best_ask_provider}"
        )


# --8<-- [end:consumer]


# --8<-- [start:main]
async def main(seconds: float) -> None:
    watcher = TopWatcher()
    config = PipelineConfig(debug=True, merges=[BTC_TOP])
    async with (
        open_venue(VenueConfig(seed=1, market=MarketConfig(rate=100.0))) as venue_a,
        open_venue(VenueConfig(seed=2, market=MarketConfig(rate=100.0))) as venue_b,
        open_network_transport() as transport,
        open_pipeline(config) as pipe,
    ):
        # kinds=[]: no direct market data at all, only what subscribe_merged adds.
        await pipe.subscribe("top", watcher, kinds=[])
        reply = await pipe.control.subscribe_merged("top", "BTC-USDT")
        assert reply.result.ok, reply.result.reason
        async with trio.open_nursery() as nursery:
            for name, venue in zip(VENUES, (venue_a, venue_b), strict=True):
                adapter = BinanceAdapter(
                    ["BTC-USDT"], ws_url=venue.ws_url, rest_url=venue.http_url, provider=name
                )
                await nursery.start(serve_provider, pipe, adapter, transport)
            await trio.sleep(seconds)
            nursery.cancel_scope.cancel(reason="example time is up")
        await pipe.wait_idle()
        merge = pipe.statistics().merge
    print(
        f"{watcher.views} merged views; windows opened {merge.opened}, "
        f"emitted {merge.emitted}, suppressed {merge.suppressed}, late fragments {merge.late}"
    )


# --8<-- [end:main]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    trio.run(main, parser.parse_args().seconds)
