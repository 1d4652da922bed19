"""Running the simulated venue: hypercorn on trio, the market and depth-push tasks.

::

    async with open_venue(VenueConfig(seed=7)) as venue:
        venue.http_url        # "http://127.0.0.1:54321"  (REST)
        venue.ws_url          # "ws://127.0.0.1:54321"    (streams: /stream?streams=...)
        venue.faults.update(rest_error_rate=0.3)

Cancellation:
    Leaving ``open_venue`` (or cancelling ``serve_venue``) stops the market and the
    depth pushes and closes the server; open connections get ``graceful_timeout``.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from meltica_trio._net import check_bindable

from ._app import build_app
from ._config import VenueConfig
from ._exchange import DEPTH_STREAMS, Exchange, SymbolState
from ._faults import Faults, FaultStatistics
from ._hub import HubStatistics
from ._market import MarketConfig
from ._matching import MatchingEngine

__all__ = ["Venue", "VenueStatistics", "open_venue", "run_venue_cli", "serve_venue"]

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class VenueStatistics:
    """A running venue's counters."""

    update_ids: dict[str, int]
    streams: HubStatistics
    faults: FaultStatistics


@attrs.define(eq=False)
class Venue:
    """A running simulated venue (from :func:`open_venue` or :func:`serve_venue`).

    Attributes:
        config: what it was started with.
        exchange: books, accounts and streams (for tests that look behind the API).
        faults: the fault knobs, adjustable while it runs.
        http_url: base URL of the REST API.
        ws_url: base URL of the WebSocket streams.
    """

    config: VenueConfig
    exchange: Exchange
    faults: Faults
    http_url: str = ""
    ws_url: str = ""

    @classmethod
    def from_config(cls, config: VenueConfig) -> Venue:
        """A venue not yet serving (its books are empty until it starts)."""
        return cls(config, Exchange(config), Faults(config.faults, seed=config.seed))

    def engine(self, symbol: str) -> MatchingEngine:
        """The matching engine of ``symbol`` (``"BTCUSDT"``)."""
        return self.exchange.symbols[symbol].engine

    def statistics(self) -> VenueStatistics:
        """Book update ids per symbol, stream traffic and faults injected."""
        return VenueStatistics(
            update_ids={name: s.engine.update_id for name, s in self.exchange.symbols.items()},
            streams=self.exchange.hub.statistics(),
            faults=self.faults.statistics(),
        )


def _hypercorn_config(config: VenueConfig) -> HypercornConfig:
    hyper = HypercornConfig()
    hyper.bind = [f"{config.host}:{config.port}"]
    hyper.graceful_timeout = config.graceful_timeout
    hyper.websocket_ping_interval = config.ws_ping_interval
    hyper.accesslog = None
    hyper.errorlog = logging.getLogger("meltica_trio.venue.hypercorn")
    return hyper


async def _run_market(exchange: Exchange, state: SymbolState) -> None:
    delay = 0.0
    while True:
        await trio.sleep(delay)
        delay = exchange.market_step(state)


async def _push_depth(exchange: Exchange, suffix: str, interval: float) -> None:
    while True:
        await trio.sleep(interval)
        exchange.flush_depth(suffix)


async def serve_venue(
    config: VenueConfig | None = None,
    *,
    task_status: trio.TaskStatus[Venue] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a simulated venue until cancelled.

    Args:
        config: the venue's configuration (defaults: loopback, a free port, seed 0).
        task_status: started with the running :class:`Venue` once it accepts connections.

    Raises:
        OSError: the configured port cannot be bound.
    """
    venue = Venue.from_config(config or VenueConfig())
    await check_bindable(venue.config.host, venue.config.port)
    app = build_app(venue.exchange, venue.faults)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            # Starlette is an ASGI app; hypercorn's protocol types are narrower than its own.
            functools.partial(serve, app, _hypercorn_config(venue.config), mode="asgi")  # type: ignore[arg-type]
        )
        venue.http_url = binds[0]
        venue.ws_url = "ws://" + binds[0].removeprefix("http://")
        venue.exchange.open_market()
        for state in venue.exchange.symbols.values():
            if state.market is not None:
                nursery.start_soon(_run_market, venue.exchange, state)
        for suffix, interval in DEPTH_STREAMS.items():
            nursery.start_soon(_push_depth, venue.exchange, suffix, interval)
        log.info("simulated venue on %s", venue.http_url)
        task_status.started(venue)


@asynccontextmanager
async def open_venue(config: VenueConfig | None = None) -> AsyncIterator[Venue]:
    """Run a simulated venue for the duration of the ``async with`` block."""
    async with trio.open_nursery() as nursery:
        venue: Venue = await nursery.start(serve_venue, config)
        try:
            yield venue
        finally:
            nursery.cancel_scope.cancel(reason="venue closed")


def run_venue_cli(
    port: int = 0, seed: int = 0, *, rate: float | None = None, host: str = "127.0.0.1"
) -> int:
    """``meltica-trio venue``: serve a venue until Ctrl+C; 0 on a clean stop, 1 if it fails.

    Args:
        port: TCP port (0: a free one, printed at start).
        seed: seeds the synthetic market.
        rate: market actions per second per symbol (default: ``MarketConfig.rate``);
            0 runs a quiet venue where only clients trade.
        host: interface to bind.
    """
    market = MarketConfig() if rate is None else MarketConfig(rate=rate) if rate > 0 else None
    config = VenueConfig(host=host, port=port, seed=seed, market=market)

    async def main() -> None:
        async with open_venue(config) as venue:
            keys = ", ".join(f"{c.api_key}/{c.secret}" for c in config.credentials)
            print(f"venue: REST {venue.http_url}  streams {venue.ws_url}", flush=True)
            print(f"venue: API key/secret {keys}; Ctrl+C to stop", flush=True)
            await trio.sleep_forever()

    try:
        trio.run(main)
    except KeyboardInterrupt:
        return 0
    except BaseExceptionGroup as group:
        # Strict nurseries wrap what hypercorn raises: Ctrl+C, or a port already taken.
        stopped, rest = group.split(KeyboardInterrupt)
        if stopped is not None and rest is None:
            return 0
        failed, rest = group.split(OSError)
        if failed is None or rest is not None:
            raise
        print(f"meltica-trio venue: {_leaf(failed)}", file=sys.stderr)
        return 1
    return 0  # pragma: no cover - main never returns by itself


def _leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
