"""Record a capture of the simulated venue, then replay it to the same books.

A recording transport wraps the network transport: every frame and REST answer the
provider gets is appended to a capture file, in the same format as the shared real
captures. The recording is then replayed offline through the synchronous core
(``replay_capture``), which must rebuild every book the live provider held.

    python examples/record_capture.py --out sim.jsonl              # 5 seconds
    python examples/record_capture.py --out sim.jsonl --seconds 1
    python examples/replay_capture.py --capture sim.jsonl          # replay it again
"""

from __future__ import annotations

import argparse
from pathlib import Path

import trio

from meltica_trio import (
    BinanceAdapter,
    PipelineConfig,
    VenueConfig,
    open_network_transport,
    open_pipeline,
    open_recording_transport,
    open_venue,
)
from meltica_trio.providers import Provider, replay_capture
from meltica_trio.venue import MarketConfig

INSTRUMENTS = ("BTC-USDT", "ETH-USDT")


# --8<-- [start:record]
async def record(path: Path, seconds: float) -> dict[str, object]:
    """Record ``seconds`` of the venue's traffic to ``path``; return the live books' tops."""
    async with (
        open_venue(VenueConfig(seed=3, market=MarketConfig(rate=100.0))) as venue,
        open_network_transport() as network,
        open_recording_transport(network, path) as transport,
        open_pipeline(PipelineConfig(debug=True)) as pipe,
    ):
        # The venue speaks Binance; the provider name is what the capture replays as.
        adapter = BinanceAdapter(INSTRUMENTS, ws_url=venue.ws_url, rest_url=venue.http_url)
        provider = Provider(pipe, adapter, transport)
        async with trio.open_nursery() as nursery:
            await nursery.start(provider.serve)
            await trio.sleep(seconds)
            nursery.cancel_scope.cancel(reason="recorded long enough")
        return {i: provider.book(i).book.top(1) for i in INSTRUMENTS}


# --8<-- [end:record]


# --8<-- [start:main]
async def main(path: Path, seconds: float) -> None:
    live = await record(path, seconds)
    replayed = await trio.to_thread.run_sync(replay_capture, path, "binance", 1)
    print(f"{path}: {replayed.records} records; replayed as binance:")
    for book in replayed.books.values():
        same = (book.bids, book.asks) == live[book.instrument]
        print(
            f"  {book.instrument:<9} {book.status.value:<5} applied {book.statistics.applied:>4}"
            f"  gaps {book.statistics.gaps}  top as recorded live: {same}"
        )


# --8<-- [end:main]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the capture file to write")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to record")
    args = parser.parse_args()
    args.out.unlink(missing_ok=True)  # the recorder appends to an existing file
    trio.run(main, args.out, args.seconds)
