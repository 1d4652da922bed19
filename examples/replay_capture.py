"""Replay a capture through a provider and a pipeline, deterministically, offline.

A capture (the JSONL format of ``shared/fixtures/README.md``) holds a venue's WebSocket
frames and REST answers as they arrived. ``ReplayTransport`` serves it back to a real
provider, so the same parser, book assembler, ordering and lanes run as against the
live venue, and a consumer counts what the pipeline delivered.

    python examples/replay_capture.py                 # the shared Binance capture
    python examples/replay_capture.py --venue okx     # the shared OKX capture
    python examples/replay_capture.py --capture sim.jsonl --venue binance

The shared captures are looked for in ``$MELTICA_FIXTURES``, then in
``shared/fixtures`` beside the checkout, then in the test suite's copies.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Final, Literal

import attrs
import trio
import trio.testing

from meltica_trio import (
    BinanceAdapter,
    BookStatus,
    ConsumerContext,
    Event,
    OkxAdapter,
    PipelineConfig,
    open_pipeline,
)
from meltica_trio.providers import Provider, replay_capture
from meltica_trio.testing import ReplayTransport

VenueName = Literal["binance", "okx"]
CAPTURES: Final = {"binance": "binance-spot-capture.jsonl", "okx": "okx-capture.jsonl"}
ROOT: Final = Path(__file__).resolve().parents[1]


def find_capture(venue: str) -> Path:
    """The shared capture of ``venue``; exits with the places tried if there is none."""
    places = [ROOT.parent / "shared" / "fixtures", ROOT / "tests" / "providers" / "data"]
    if os.environ.get("MELTICA_FIXTURES"):
        places.insert(0, Path(os.environ["MELTICA_FIXTURES"]))
    for place in places:
        if (place / CAPTURES[venue]).is_file():
            return place / CAPTURES[venue]
    tried = ", ".join(str(place) for place in places)
    sys.exit(f"replay_capture.py: no {CAPTURES[venue]} in {tried}; pass --capture PATH")


# --8<-- [start:consumer]
@attrs.define(eq=False)
class Tally:
    """Counts deliveries per kind and remembers each book's last status."""

    kinds: Counter[str] = attrs.field(factory=Counter)
    books: dict[str, str] = attrs.field(factory=dict)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        self.kinds[event.kind.value] += 1
        if isinstance(event.payload, BookStatus):
            self.books[event.instrument] = event.payload.state.value


# --8<-- [end:consumer]


# --8<-- [start:main]
async def main(capture: Path, venue: VenueName) -> None:
    # The synchronous core replay needs no trio: here it names the capture's books.
    core = await trio.to_thread.run_sync(replay_capture, capture, venue)
    instruments = [book.instrument for book in core.books.values()]
    replay = await trio.to_thread.run_sync(ReplayTransport.from_capture, capture)
    adapter = BinanceAdapter(instruments) if venue == "binance" else OkxAdapter(instruments)
    tally = Tally()
    async with open_pipeline(PipelineConfig(debug=True)) as pipe:
        await pipe.subscribe("tally", tally)
        provider = Provider(pipe, adapter, replay)
        async with trio.open_nursery() as nursery:
            await nursery.start(provider.serve)
            await replay.finished.wait()  # the last frame has been read...
            await trio.testing.wait_all_tasks_blocked()  # ...and everything it caused, done
            nursery.cancel_scope.cancel(reason="the capture has been replayed")
        await pipe.wait_idle()
    print(f"{capture.name}: {len(replay.records)} records replayed as {venue}")
    for book in provider.statistics().books:
        print(
            f"  {book.instrument:<16} {book.state.value:<9} applied {book.applied:>4}  "
            f"gaps {book.gaps}  checksums ok {book.checksum_ok}, failed {book.checksum_failed}"
        )
    print("  delivered: " + ", ".join(f"{k} {n}" for k, n in sorted(tally.kinds.items())))


# --8<-- [end:main]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venue", choices=sorted(CAPTURES), default="binance")
    parser.add_argument("--capture", type=Path, help="a capture file (default: the shared one)")
    args = parser.parse_args()
    venue: VenueName = "okx" if args.venue == "okx" else "binance"
    trio.run(main, args.capture or find_capture(venue), venue)
