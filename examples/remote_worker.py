"""A consumer in a worker process, fed over Redis Streams, placing a remote order.

The pipeline side runs a simulated venue, a provider, an order client and a pipeline
bridged to Redis. The worker side runs a consumer function through the same consumer
runtime, reading the exported trades and its own critical stream; its one order goes
back through Redis to the pipeline's order gateway, and the execution reports return
the same way. Needs Redis (``redis-server``) and the ``redis`` extra.

    python examples/remote_worker.py                    # both sides in one program, 10 s
    python examples/remote_worker.py --role pipeline    # terminal 1: the pipeline side
    python examples/remote_worker.py --role worker      # terminal 2 (and 3...): workers
    meltica-trio worker --redis redis://127.0.0.1:6379/0 --prefix meltica-example \\
        --group remote --consumer remote_worker:strategy --trading   # from examples/
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AsyncExitStack
from typing import Final

import attrs
import coredis
import trio

from meltica_trio import (
    BinanceAdapter,
    BinanceOrderConfig,
    BookStatus,
    ConsumerContext,
    ControlResult,
    Event,
    ExecReport,
    Kind,
    PipelineConfig,
    Side,
    Trade,
    VenueConfig,
    open_binance_orders,
    open_network_transport,
    open_pipeline,
    open_venue,
    serve_provider,
)
from meltica_trio.bridge import BridgeConfig, MarketExport, WorkerConfig, open_bridge, open_worker
from meltica_trio.venue import DEFAULT_API_KEY, DEFAULT_API_SECRET, MarketConfig

GROUP: Final = "remote"
"""The remote consumer: its consumer group in Redis and its consumer id in the pipeline."""


# --8<-- [start:strategy]
@attrs.define(eq=False)
class RemoteStrategy:
    """Counts trades; buys once, on the first trade it sees; prints what comes back."""

    trades: int = 0
    ordered: bool = False

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        payload = event.payload
        if isinstance(payload, Trade):
            self.trades += 1
            if not self.ordered:
                self.ordered = True
                ctx.submit_order(
                    # Derived from the event: a worker that re-runs it orders nothing new.
                    client_order_id=f"{GROUP}-{payload.trade_id}",
                    provider="sim",
                    instrument=event.instrument,
                    side=Side.BUY,
                    quantity="0.00100",
                    price=payload.price,
                )
        elif isinstance(payload, BookStatus):
            print(f"worker: book {event.provider} {event.instrument} is {payload.state.value}")
        elif isinstance(payload, ControlResult):
            print(f"worker: {payload.command} ok={payload.ok} {payload.reason or ''}".rstrip())
        elif isinstance(payload, ExecReport):
            print(f"worker: order {payload.client_order_id} {payload.state.value}")


strategy = RemoteStrategy()
"""The function ``meltica-trio worker --consumer remote_worker:strategy`` runs."""
# --8<-- [end:strategy]


# --8<-- [start:pipeline]
async def serve_pipeline(
    redis: str, prefix: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """The pipeline side: venue -> provider -> pipeline -> bridge, until cancelled."""
    async with AsyncExitStack() as stack:
        venue = await stack.enter_async_context(
            open_venue(VenueConfig(seed=1, market=MarketConfig(rate=100.0)))
        )
        orders = await stack.enter_async_context(
            open_binance_orders(
                BinanceOrderConfig(
                    api_key=DEFAULT_API_KEY,
                    api_secret=DEFAULT_API_SECRET,
                    rest_url=venue.http_url,
                    ws_url=venue.ws_url,
                    provider="sim",
                )
            )
        )
        transport = await stack.enter_async_context(open_network_transport())
        pipe = await stack.enter_async_context(
            open_pipeline(PipelineConfig(debug=True), order_clients=[orders])
        )
        export = MarketExport(instruments=["BTC-USDT"], kinds=[Kind.TRADE])
        bridge = await stack.enter_async_context(
            open_bridge(pipe, BridgeConfig(url=redis, prefix=prefix, market=export))
        )
        adapter = BinanceAdapter(
            ["BTC-USDT"], ws_url=venue.ws_url, rest_url=venue.http_url, provider="sim"
        )
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(serve_provider, pipe, adapter, transport)
                task_status.started()
                await trio.sleep_forever()
        finally:
            stats = bridge.statistics()
            print(
                f"pipeline: remotes {list(stats.remotes)}, "
                f"orders from workers {stats.control.commands}, "
                f"orders at the venue {pipe.statistics().orders.venue_orders}"
            )


# --8<-- [end:pipeline]


# --8<-- [start:worker]
async def serve_worker(redis: str, prefix: str) -> None:
    """The worker side: run ``strategy`` as the remote consumer GROUP until cancelled."""
    config = WorkerConfig(
        group=GROUP,
        url=redis,
        prefix=prefix,
        kinds=[Kind.TRADE, Kind.BOOK_STATUS],  # its reports and answers come regardless
        trading=True,  # off by default: a worker fails closed like any consumer
        debug=True,
    )
    async with open_worker(config, strategy) as worker:
        try:
            await trio.sleep_forever()
        finally:
            stats = worker.statistics()
            print(
                f"worker: {strategy.trades} trades, {stats.critical.applied} critical "
                f"events applied, {stats.forwarder.forwarded} orders forwarded"
            )


# --8<-- [end:worker]


async def check_redis(url: str) -> None:
    """Exit with a clear message unless Redis answers at ``url``."""
    problem: BaseException | None = None
    try:
        with trio.fail_after(2):
            async with coredis.Redis.from_url(url) as client:
                await client.ping()
    except* (OSError, trio.TooSlowError, coredis.exceptions.RedisError) as group:
        problem = group.exceptions[0]
    if problem is not None:
        sys.exit(f"remote_worker.py: no Redis answers at {url} ({problem}); start redis-server")


# --8<-- [start:main]
async def main(role: str, redis: str, prefix: str, seconds: float) -> None:
    await check_redis(redis)
    async with trio.open_nursery() as outer:
        if role in ("pipeline", "both"):
            await outer.start(serve_pipeline, redis, prefix)
        if role in ("worker", "both"):
            with trio.move_on_after(seconds):
                await serve_worker(redis, prefix)  # stops first, while the pipeline runs
        else:
            await trio.sleep(seconds)
        outer.cancel_scope.cancel(reason="example time is up")


# --8<-- [end:main]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("both", "pipeline", "worker"), default="both")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
    parser.add_argument("--prefix", default="meltica-example", help="Redis key prefix")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    args = parser.parse_args()
    trio.run(main, args.role, args.redis, args.prefix, args.seconds)
