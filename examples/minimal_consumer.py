"""A minimal consumer: one simulated venue, one provider, one plain function.

The simulated venue runs on localhost and speaks the Binance spot protocol; a provider
streams its BTC-USDT market over real WebSocket and REST connections into a pipeline,
and one function prints every trade it is given.

    python examples/minimal_consumer.py            # runs for 10 seconds
    python examples/minimal_consumer.py --seconds 2
"""

from __future__ import annotations

import argparse

import trio

from meltica_trio import (
    BinanceAdapter,
    ConsumerContext,
    Event,
    Kind,
    PipelineConfig,
    Trade,
    VenueConfig,
    open_network_transport,
    open_pipeline,
    open_venue,
    serve_provider,
)
from meltica_trio.venue import MarketConfig


# --8<-- [start:consumer]
def print_trade(event: Event, ctx: ConsumerContext) -> None:
    """Print one trade; the runtime recycles ``event`` once this returns."""
    trade = event.payload
    assert isinstance(trade, Trade)
    side = trade.side.value
    print(f"{ctx.consumer_id}: {event.instrument} {side} {trade.size} @ {trade.price}")


# --8<-- [end:consumer]


# --8<-- [start:main]
async def main(seconds: float) -> None:
    venue_config = VenueConfig(seed=1, market=MarketConfig(rate=100.0))
    async with (
        open_venue(venue_config) as venue,
        open_network_transport() as transport,
        open_pipeline(PipelineConfig(debug=True)) as pipe,
    ):
        await pipe.subscribe("printer", print_trade, kinds=[Kind.TRADE])
        adapter = BinanceAdapter(
            ["BTC-USDT"], ws_url=venue.ws_url, rest_url=venue.http_url, provider="sim"
        )
        async with trio.open_nursery() as nursery:
            # start() returns once the provider is connected and subscribed.
            await nursery.start(serve_provider, pipe, adapter, transport)
            await trio.sleep(seconds)
            nursery.cancel_scope.cancel(reason="example time is up")
        await pipe.wait_idle()
        (printer,) = pipe.statistics().consumers
    print(f"printer handled {printer.handled} events, {printer.failed} failed")


# --8<-- [end:main]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    trio.run(main, parser.parse_args().seconds)
