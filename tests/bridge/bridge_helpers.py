"""Shared pieces of the bridge's tests: configs, events and a recording consumer."""

from __future__ import annotations

from typing import Any, Final

import attrs
import trio

from meltica_trio import (
    BookState,
    BookStatus,
    Event,
    ExecReport,
    Kind,
    OrderState,
    Pipeline,
    Side,
    Trade,
)
from meltica_trio.bridge import BridgeConfig, WorkerConfig
from meltica_trio.consumers import ConsumerContext

FAST: Final = {"read_block": 0.05}
"""Short blocking reads: a test's worker notices shutdown and new topics quickly."""

SETTLE: Final = 10.0
"""Seconds (real time: real sockets, a real Redis) a test waits for what must happen."""


def bridge_config(url: str, prefix: str, **overrides: Any) -> BridgeConfig:
    """A bridge for tests: the test's prefix, short reads and trims."""
    settings: dict[str, Any] = {"read_block": 0.05, "trim_interval": 0.1, "claim_idle": 1.0}
    return BridgeConfig(url=url, prefix=prefix, **(settings | overrides))


def worker_config(url: str, prefix: str, group: str = "g1", **overrides: Any) -> WorkerConfig:
    """A worker for tests: debug envelopes, short reads, a quick claim of dead workers' entries."""
    settings: dict[str, Any] = {
        "name": f"{group}-w1",
        "read_block": 0.05,
        "claim_idle": 1.0,
        "topic_refresh": 0.05,
        "debug": True,
    }
    return WorkerConfig(group=group, url=url, prefix=prefix, **(settings | overrides))


def exec_report(n: int, consumer_id: str = "g1") -> ExecReport:
    """The n-th report of a filled order of ``consumer_id``; its exec id is ``x-<n>``."""
    return ExecReport(
        exec_id=f"x-{n}",
        consumer_id=consumer_id,
        client_order_id=f"o-{n}",
        venue_order_id=str(n),
        side=Side.BUY,
        price="100.0",
        quantity="1",
        state=OrderState.FILLED,
        filled="1",
        remaining="0",
    )


def trade(n: int) -> Trade:
    """The n-th trade of a test stream."""
    return Trade(price=f"{100 + n}.5", size="0.1", side=Side.SELL, trade_id=str(n), trade_ts=n)


async def publish_report(pipe: Pipeline, n: int, consumer_id: str = "g1") -> None:
    """Publish an ExecReport through the pipeline (routed like any critical event)."""
    event = pipe.new_event(
        kind=Kind.EXEC_REPORT,
        provider="sim",
        instrument="BTC-USDT",
        payload=exec_report(n, consumer_id),
    )
    await pipe.publish(event)


async def publish_trade(pipe: Pipeline, n: int, instrument: str = "BTC-USDT") -> None:
    """Publish the n-th trade of ``sim``/``instrument`` (seq ``n``)."""
    event = pipe.new_event(
        kind=Kind.TRADE, provider="sim", instrument=instrument, seq=n, payload=trade(n)
    )
    await pipe.publish(event)


async def publish_status(pipe: Pipeline, n: int) -> None:
    """Publish a BookStatus (a critical event routed by instrument) numbered by ``last_seq``."""
    status = BookStatus(state=BookState.LIVE, reason=None, last_seq=n)
    event = pipe.new_event(
        kind=Kind.BOOK_STATUS, provider="sim", instrument="BTC-USDT", payload=status
    )
    await pipe.publish(event)


@attrs.define(eq=False)
class Recorder:
    """A consumer that keeps every payload by kind and wakes waiters on each event."""

    payloads: dict[Kind, list[object]] = attrs.field(factory=dict)
    skipped: int = 0
    _changed: trio.Event = attrs.field(factory=trio.Event)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        self.payloads.setdefault(event.kind, []).append(event.payload)
        self.skipped += event.skipped
        self._changed.set()

    def of(self, kind: Kind) -> list[Any]:
        """The payloads of ``kind`` received so far, in order."""
        return self.payloads.get(kind, [])

    async def wait_for(self, kind: Kind, count: int) -> list[Any]:
        """Wait until ``count`` payloads of ``kind`` have arrived (at most SETTLE seconds)."""
        with trio.fail_after(SETTLE):
            while len(self.of(kind)) < count:
                self._changed = trio.Event()
                await self._changed.wait()
        return self.of(kind)
