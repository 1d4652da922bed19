"""The venue's state behind the HTTP layer: books, accounts, listenKeys, publishing.

Everything here is synchronous: a REST handler or the market task calls a method, the
engine changes, and the resulting stream messages are handed to the hub before the
method returns, so no other task can observe the book between a change and its diff.
"""

from __future__ import annotations

import collections
import itertools
import random
import secrets
from collections.abc import Iterable, Iterator
from typing import Final

import attrs
import trio

from . import _protocol as wire
from ._config import ApiCredentials, SymbolSpec, VenueConfig
from ._hub import DepthFeed, StreamHub
from ._market import SyntheticMarket
from ._matching import MatchingEngine
from ._orders import (
    DuplicateOrderError,
    Fill,
    OrderRequest,
    OrderView,
    Outcome,
    UnknownOrderError,
)

__all__ = ["DEPTH_STREAMS", "Exchange", "SymbolState"]

DEPTH_STREAMS: Final = {"@depth@100ms": 0.1, "@depth": 1.0}
"""Diff depth stream suffixes and their push intervals in seconds (Binance's two speeds)."""


@attrs.define(eq=False)
class SymbolState:
    """One symbol's engine, synthetic market and depth batches."""

    spec: SymbolSpec
    engine: MatchingEngine
    market: SyntheticMarket | None
    feeds: dict[str, DepthFeed] = attrs.field(
        factory=lambda: {s: DepthFeed() for s in DEPTH_STREAMS}
    )
    agg_ids: Iterator[int] = attrs.field(factory=lambda: itertools.count(1))

    @property
    def stream(self) -> str:
        """Prefix of this symbol's stream names (``btcusdt``)."""
        return self.spec.symbol.lower()


@attrs.define(eq=False)
class _ListenKey:
    account: str
    expires: float


class Exchange:
    """Books, accounts and streams of a simulated venue.

    Args:
        config: the venue's configuration.
    """

    def __init__(self, config: VenueConfig) -> None:
        self.config = config
        self.hub = StreamHub(config.stream_capacity)
        exec_ids = itertools.count(1)
        self.symbols: dict[str, SymbolState] = {}
        for spec in config.symbols:
            engine = MatchingEngine(spec.symbol, exec_ids=exec_ids)
            market = None
            if config.market is not None:
                rng = random.Random(f"{config.seed}:{spec.symbol}")
                market = SyntheticMarket(
                    engine, spec.tick_size, spec.step_size, float(spec.initial_price),
                    config.market, rng,
                )  # fmt: skip
            self.symbols[spec.symbol] = SymbolState(spec, engine, market)
        self._keys = {c.api_key: c for c in config.credentials}
        self._listen_keys: dict[str, _ListenKey] = {}
        # What clients did, for tests and the demo's audit (no venue logic reads them).
        self.placed: collections.Counter[tuple[str, str]] = collections.Counter()
        """Orders accepted, by (account, client order id): above 1 is a duplicate order."""
        self.reports_sent: collections.Counter[str] = collections.Counter()
        """executionReports sent on user data streams, by account."""
        self.order_reports: collections.Counter[tuple[str, str]] = collections.Counter()
        """executionReports sent on user data streams, by (account, client order id)."""
        self.requests: collections.Counter[tuple[str, str, int]] = collections.Counter()
        """REST calls answered, by (method, path, status); a hung call counts when it ends."""

    def now_ms(self) -> int:
        """The venue's wall clock in milliseconds."""
        return self.config.clock()

    def credentials(self, api_key: str | None) -> ApiCredentials:
        """The credentials behind an API key.

        Raises:
            ApiError: -2014 without a key, -2015 for a key the venue does not know.
        """
        if not api_key:
            raise wire.BAD_KEY_FORMAT
        found = self._keys.get(api_key)
        if found is None:
            raise wire.REJECTED_KEY
        return found

    def symbol(self, name: str | None) -> SymbolState:
        """A symbol's state. Raises ApiError -1121 when unknown."""
        state = self.symbols.get((name or "").upper())
        if state is None:
            raise wire.BAD_SYMBOL
        return state

    # -- orders -----------------------------------------------------------------------

    def place(self, state: SymbolState, request: OrderRequest) -> Outcome:
        """Submit an order and publish what it changed. Raises ApiError -2010 on duplicates."""
        try:
            outcome = state.engine.submit(request, self.now_ms())
        except DuplicateOrderError:
            raise wire.DUPLICATE_ORDER from None
        client_order_id = request.client_order_id or ""
        self.placed[(request.owner, client_order_id)] += 1
        self.publish(state, [outcome])
        return outcome

    def cancel(
        self,
        state: SymbolState,
        account: str,
        *,
        order_id: int | None,
        client_order_id: str | None,
        cancel_id: str,
    ) -> Outcome:
        """Cancel an open order and publish. Raises ApiError -2011 when there is none."""
        try:
            outcome = state.engine.cancel(
                account,
                order_id=order_id,
                client_order_id=client_order_id,
                cancel_client_order_id=cancel_id,
                now_ms=self.now_ms(),
            )
        except UnknownOrderError:
            raise wire.UNKNOWN_ORDER_CANCEL from None
        self.publish(state, [outcome])
        return outcome

    def query(
        self, state: SymbolState, account: str, order_id: int | None, client_order_id: str | None
    ) -> OrderView:
        """Look an order up. Raises ApiError -2013 when there is none."""
        try:
            return state.engine.order(account, order_id=order_id, client_order_id=client_order_id)
        except UnknownOrderError:
            raise wire.NO_SUCH_ORDER from None

    # -- the synthetic market ---------------------------------------------------------

    def open_market(self) -> None:
        """Let every symbol's providers quote their initial book."""
        for state in self.symbols.values():
            if state.market is not None:
                self.publish(state, state.market.open(self.now_ms()))

    def market_step(self, state: SymbolState) -> float:
        """One market action on ``state``; returns seconds until its next one."""
        assert state.market is not None
        self.publish(state, state.market.step(self.now_ms()))
        return state.market.next_delay()

    # -- publishing -------------------------------------------------------------------

    def publish(self, state: SymbolState, outcomes: Iterable[Outcome]) -> None:
        """Hand the stream messages of ``outcomes`` to the hub, in order."""
        now = self.now_ms()
        for outcome in outcomes:
            for feed in state.feeds.values():
                feed.add(outcome.changes)
            self._publish_trades(state, now, outcome.fills)
            if outcome.top_changed:
                bid, ask = state.engine.best()
                payload = wire.book_ticker(state.spec.symbol, state.engine.update_id, bid, ask)
                self.hub.publish(f"{state.stream}@bookTicker", payload)
            for report in outcome.reports:
                key = self._key_of(report.order.owner)
                if key is not None:
                    self.hub.publish(key, wire.execution_report(state.spec.symbol, now, report))
                    self.reports_sent[report.order.owner] += 1
                    self.order_reports[(report.order.owner, report.order.client_order_id)] += 1

    def _publish_trades(self, state: SymbolState, now: int, fills: tuple[Fill, ...]) -> None:
        name = f"{state.stream}@aggTrade"
        for _, group in itertools.groupby(fills, key=lambda f: (f.taker_order_id, f.price)):
            payload = wire.agg_trade(state.spec.symbol, now, next(state.agg_ids), list(group))
            self.hub.publish(name, payload)

    def flush_depth(self, suffix: str) -> None:
        """Push each symbol's pending diff on its ``<symbol><suffix>`` stream."""
        now = self.now_ms()
        for state in self.symbols.values():
            batch = state.feeds[suffix].take()
            if batch is None:
                continue
            payload = wire.depth_update(
                state.spec.symbol, now, batch.first, batch.last, batch.bids, batch.asks
            )
            self.hub.publish(f"{state.stream}{suffix}", payload)

    # -- listenKeys -------------------------------------------------------------------

    def open_listen_key(self, account: str) -> str:
        """The account's listenKey (a new one if it has none), valid for another TTL."""
        key = self._key_of(account)
        if key is None:
            key = secrets.token_hex(32)
            self._listen_keys[key] = _ListenKey(account, 0.0)
        self._listen_keys[key].expires = trio.current_time() + self.config.listen_key_ttl
        return key

    def keepalive_listen_key(self, account: str, key: str | None) -> None:
        """Extend a listenKey. Raises ApiError -1125 when it is not the account's."""
        self._owned(account, key).expires = trio.current_time() + self.config.listen_key_ttl

    def close_listen_key(self, account: str, key: str | None) -> None:
        """Invalidate a listenKey and end its streams. Raises ApiError -1125."""
        self._owned(account, key)
        assert key is not None
        del self._listen_keys[key]
        self.hub.close_stream(key)

    def is_listen_key(self, key: str) -> bool:
        """True for a live listenKey (expired ones are forgotten here)."""
        found = self._listen_keys.get(key)
        if found is not None and found.expires < trio.current_time():
            del self._listen_keys[key]
            self.hub.close_stream(key)
            return False
        return found is not None

    def _owned(self, account: str, key: str | None) -> _ListenKey:
        found = self._listen_keys.get(key or "")
        if found is None or found.account != account or not self.is_listen_key(key or ""):
            raise wire.NO_LISTEN_KEY
        return found

    def _key_of(self, account: str) -> str | None:
        for key, entry in self._listen_keys.items():
            if entry.account == account:
                return key
        return None
