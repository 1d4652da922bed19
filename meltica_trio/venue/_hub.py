"""Fan-out of stream messages to WebSocket connections, and depth-diff batching.

Each connection subscribes to a set of stream names (``btcusdt@aggTrade``, a listenKey)
and gets one bounded channel. Publishing never blocks: a connection whose channel is
full is dropped (its channel closed), as Binance drops clients that do not keep up.
Every message is encoded at most once per shape, when a connection first needs it:
the raw payload (for ``/ws/...``) or the combined-stream wrapper
``{"stream": name, "data": payload}`` (for ``/stream?streams=...``).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs
import orjson
import trio

from ._orders import LevelChange, OrderSide

__all__ = ["DepthBatch", "DepthFeed", "Frame", "HubStatistics", "StreamHub", "Subscription"]


@attrs.define(eq=False)
class Frame:
    """One message of one stream, encoded for raw or combined connections on first use."""

    stream: str
    payload: dict[str, Any]
    _raw: str | None = None
    _combined: str | None = None

    @property
    def raw(self) -> str:
        """The payload alone (``/ws/...`` connections)."""
        if self._raw is None:
            self._raw = orjson.dumps(self.payload).decode()
        return self._raw

    @property
    def combined(self) -> str:
        """``{"stream": name, "data": payload}`` (``/stream?streams=...`` connections)."""
        if self._combined is None:
            self._combined = orjson.dumps({"stream": self.stream, "data": self.payload}).decode()
        return self._combined


@attrs.define(eq=False)
class Subscription:
    """One connection's view of the hub: what it follows and where messages arrive."""

    streams: frozenset[str]
    send: trio.MemorySendChannel[Frame]
    receive: trio.MemoryReceiveChannel[Frame]
    overflowed: bool = False


@attrs.frozen(kw_only=True)
class HubStatistics:
    """Counts of the hub's traffic."""

    subscriptions: int
    published: int
    delivered: int
    overflows: int


@attrs.define(eq=False)
class StreamHub:
    """Routes published stream messages to the subscriptions following them.

    Args:
        capacity: messages a subscription may hold before it is dropped.
    """

    capacity: int
    _by_stream: dict[str, set[Subscription]] = attrs.field(init=False, factory=dict)
    _counts: dict[str, int] = attrs.field(init=False, factory=dict)
    _waiters: dict[str, trio.Event] = attrs.field(init=False, factory=dict)

    def subscribe(self, streams: Iterable[str]) -> Subscription:
        """Follow ``streams``; close with :meth:`unsubscribe` when the connection ends."""
        send, receive = trio.open_memory_channel[Frame](self.capacity)
        sub = Subscription(frozenset(streams), send, receive)
        for name in sub.streams:
            self._by_stream.setdefault(name, set()).add(sub)
            waiter = self._waiters.pop(name, None)
            if waiter is not None:
                waiter.set()
        return sub

    async def wait_subscribed(self, name: str) -> None:
        """Block until some connection follows ``name``.

        The server subscribes a connection just after its handshake, so a client that
        has connected may still miss a message published at once; tests wait here first.
        """
        while name not in self._by_stream:
            await self._waiters.setdefault(name, trio.Event()).wait()

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub`` and close its channels."""
        for name in sub.streams:
            subs = self._by_stream.get(name)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_stream[name]
        sub.send.close()
        sub.receive.close()

    def close_stream(self, name: str) -> None:
        """End every subscription following ``name`` (a deleted listenKey)."""
        for sub in list(self._by_stream.get(name, ())):
            sub.send.close()

    def has_subscribers(self, name: str) -> bool:
        """True when some connection follows ``name`` (saves encoding otherwise)."""
        return name in self._by_stream

    def publish(self, name: str, payload: dict[str, Any]) -> None:
        """Deliver ``payload`` on stream ``name`` to every subscription, without waiting."""
        subs = self._by_stream.get(name)
        self._bump("published")
        if not subs:
            return
        frame = Frame(name, payload)
        for sub in list(subs):
            try:
                sub.send.send_nowait(frame)
            except trio.WouldBlock:
                sub.overflowed = True
                sub.send.close()
                self._bump("overflows")
            except trio.ClosedResourceError:
                pass
            else:
                self._bump("delivered")

    def statistics(self) -> HubStatistics:
        """Counts of subscriptions and messages so far."""
        subs = {sub for group in self._by_stream.values() for sub in group}
        return HubStatistics(
            subscriptions=len(subs),
            published=self._counts.get("published", 0),
            delivered=self._counts.get("delivered", 0),
            overflows=self._counts.get("overflows", 0),
        )

    def _bump(self, name: str) -> None:
        self._counts[name] = self._counts.get(name, 0) + 1


@attrs.define(eq=False)
class DepthFeed:
    """Level changes of one symbol gathered between two depth pushes.

    Binance pushes the diff of each interval with ``U`` (first update id in it) and
    ``u`` (last); as every change takes the next id, consecutive diffs satisfy
    ``U == previous u + 1``. Within one diff a level appears once, at its final size.
    """

    first: int | None = None
    last: int = 0
    levels: dict[tuple[OrderSide, Decimal], Decimal] = attrs.field(factory=dict)

    def add(self, changes: Iterable[LevelChange]) -> None:
        """Take level changes in update-id order."""
        for change in changes:
            if self.first is None:
                self.first = change.update_id
            self.last = change.update_id
            self.levels[(change.side, change.price)] = change.quantity

    def take(self) -> DepthBatch | None:
        """Empty the batch; ``None`` when nothing changed since the last take."""
        if self.first is None:
            return None
        levels = self.levels.items()
        batch = DepthBatch(
            first=self.first,
            last=self.last,
            bids=sorted(((p, q) for (s, p), q in levels if s is OrderSide.BUY), reverse=True),
            asks=sorted((p, q) for (s, p), q in levels if s is OrderSide.SELL),
        )
        self.first = None
        self.levels = {}
        return batch


@attrs.frozen(kw_only=True)
class DepthBatch:
    """One depth diff: update ids ``first..last``; bids descending, asks ascending."""

    first: int
    last: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
