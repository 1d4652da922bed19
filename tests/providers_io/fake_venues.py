"""Tiny venues for provider tests: books that write correct frames, and a sink.

``BinanceVenue`` and ``OkxVenue`` keep a real ``OrderBook`` per instrument and emit
the frames (and REST snapshots) a venue would send for it, with correct update ids and
checksums, so a test can damage exactly one thing. ``Sink`` stands in for a pipeline
and keeps, in order, what a provider published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio

from meltica_trio import Event, Kind
from meltica_trio.events import BookDelta, BookSnapshot, BookState, BookStatus, Payload
from meltica_trio.providers import OrderBook

Published = tuple[Kind, str, int | None, Payload | None]


@attrs.define(eq=False)
class Sink:
    """An ``EventSink`` that records what it is given; events are plain, not pooled."""

    events: list[Published] = attrs.field(factory=list)
    listeners: dict[str, Callable[[str, str], None]] = attrs.field(factory=dict)
    declared: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    changed: trio.Event = attrs.field(factory=trio.Event)

    def new_event(
        self,
        *,
        kind: Kind,
        provider: str = "",
        instrument: str = "",
        seq: int | None = None,
        payload: Payload | None = None,
    ) -> Event:
        event = Event()
        event.kind, event.provider, event.instrument = kind, provider, instrument
        event.seq, event.payload = seq, payload
        return event

    async def publish(self, event: Event) -> None:
        self.events.append((event.kind, event.instrument, event.seq, event.payload))
        self.changed.set()
        self.changed = trio.Event()
        await trio.lowlevel.checkpoint()

    def on_resync(self, provider: str, listener: Callable[[str, str], None]) -> None:
        self.listeners[provider] = listener

    def declare_instruments(self, provider: str, instruments: Iterable[str]) -> None:
        self.declared[provider] = tuple(instruments)

    async def wait_for(self, condition: Callable[[Sink], bool]) -> None:
        while not condition(self):
            await self.changed.wait()

    def statuses(self, instrument: str | None = None) -> list[tuple[str, BookState]]:
        return [
            (inst, payload.state)
            for kind, inst, _, payload in self.events
            if isinstance(payload, BookStatus) and instrument in (None, inst)
        ]

    def count(self, kind: Kind, instrument: str | None = None) -> int:
        return sum(1 for k, inst, _, _ in self.events if k is kind and instrument in (None, inst))


def continuity_breaks(events: Iterable[Published]) -> list[str]:
    """Per book: every delta's ``prev_seq`` is the ``seq`` of the event before it."""
    last: dict[str, int | None] = {}
    breaks: list[str] = []
    for _kind, instrument, seq, payload in events:
        if isinstance(payload, BookStatus):
            last.pop(instrument, None)
        elif isinstance(payload, BookSnapshot):
            last[instrument] = seq
        elif isinstance(payload, BookDelta):
            if instrument not in last:
                breaks.append(f"{instrument}: delta {seq} without a snapshot")
            elif payload.prev_seq != last[instrument]:
                breaks.append(f"{instrument}: {payload.prev_seq} after {last[instrument]}")
            last[instrument] = seq
    return breaks


@attrs.define(eq=False)
class BinanceVenue:
    """One Binance symbol: diffs with contiguous ``U``/``u`` and matching snapshots."""

    symbol: str = "BTCUSDT"
    update_id: int = 1000
    book: OrderBook = attrs.field(factory=OrderBook)

    def diff(self) -> dict[str, Any]:
        """The next depth update (one bid and one ask level change), applied here."""
        self.update_id += 1
        n = self.update_id
        bids = [[f"{100 + n % 7}.00", str(n % 5)]]
        asks = [[f"{110 + n % 5}.00", str(n % 3 + 1)]]
        self.book.apply([tuple(b) for b in bids], [tuple(a) for a in asks])  # type: ignore[misc]
        data = {"e": "depthUpdate", "E": n, "s": self.symbol, "U": n, "u": n, "b": bids, "a": asks}
        return {"stream": f"{self.symbol.lower()}@depth@100ms", "data": data}

    def snapshot(self) -> dict[str, Any]:
        """The REST depth snapshot of the book now."""
        bids, asks = self.book.top()
        return {
            "lastUpdateId": self.update_id,
            "bids": [list(level) for level in bids],
            "asks": [list(level) for level in asks],
        }

    def trade(self, trade_id: int) -> dict[str, Any]:
        data = {
            "e": "aggTrade",
            "E": 1,
            "s": self.symbol,
            "a": trade_id,
            "p": "100.0",
            "q": "1",
            "T": 1,
            "m": False,
        }
        return {"stream": f"{self.symbol.lower()}@aggTrade", "data": data}


@attrs.define(eq=False)
class OkxVenue:
    """OKX books: snapshots and updates with ``seqId``/``prevSeqId`` and checksums."""

    books: dict[str, OrderBook] = attrs.field(factory=dict)
    seqs: dict[str, int] = attrs.field(factory=dict)

    def _frame(self, instrument: str, action: str, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "arg": {"channel": "books", "instId": instrument},
            "action": action,
            "data": [item],
        }

    def snapshot(self, instrument: str) -> dict[str, Any]:
        book = self.books.setdefault(instrument, OrderBook())
        if not book.bid_count:
            book.load([("100.0", "1"), ("99.5", "2")], [("100.5", "1"), ("101.0", "3")])
        seq = self.seqs.setdefault(instrument, 10)
        bids, asks = book.top()
        item = {
            "bids": [[p, s, "0", "1"] for p, s in bids],
            "asks": [[p, s, "0", "1"] for p, s in asks],
            "ts": "1652459225000",
            "checksum": book.checksum(),
            "seqId": seq,
            "prevSeqId": -1,
        }
        return self._frame(instrument, "snapshot", item)

    def update(
        self, instrument: str, *, corrupt: bool = False, skip: bool = False
    ) -> dict[str, Any]:
        """The next update of ``instrument``; ``corrupt`` spoils its checksum, ``skip``
        its ``prevSeqId`` (as if an update had been lost)."""
        book = self.books[instrument]
        prev = self.seqs[instrument]
        seq = prev + 1
        self.seqs[instrument] = seq
        bid = (f"{99 + seq % 3}.0", str(seq % 4))
        book.apply([bid], [])
        item = {
            "bids": [[bid[0], bid[1], "0", "1"]],
            "asks": [],
            "ts": "1652459225000",
            "checksum": book.checksum() + (1 if corrupt else 0),
            "seqId": seq,
            "prevSeqId": prev - 1 if skip else prev,
        }
        return self._frame(instrument, "update", item)
