"""The order gateway's idempotency ledger in a real Redis, orders on the simulated venue."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
import trio

from meltica_trio import BinanceOrderConfig, Event, ExecReport, Side, open_binance_orders
from meltica_trio._errors import DecodeError
from meltica_trio.bridge import RedisLedger, open_redis_ledger
from meltica_trio.bridge._ledger import decode_entry, encode_entry, ledger_key
from meltica_trio.bus import ControlReply, Outcome, SubmitOrder
from meltica_trio.consumers import ConsumerContext
from meltica_trio.events import OrderState
from meltica_trio.orders import LedgerEntry, OrderKey
from meltica_trio.testing import open_test_pipeline
from meltica_trio.venue import DEFAULT_API_KEY, DEFAULT_API_SECRET, VenueConfig, open_venue
from meltica_trio.venue._server import Venue

SETTLE = 10.0
"""Seconds (real time: real sockets) an order may take to reach its owner's lane."""


@attrs.define(eq=False)
class Owner:
    """A consumer that records the execution reports of its orders."""

    reports: list[ExecReport] = attrs.field(factory=list)
    acked: trio.Event = attrs.field(factory=trio.Event)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        if isinstance(event.payload, ExecReport):
            self.reports.append(event.payload)
            if event.payload.state is OrderState.ACK:
                self.acked.set()


def _client_config(venue: Venue) -> BinanceOrderConfig:
    return BinanceOrderConfig(
        api_key=DEFAULT_API_KEY,
        api_secret=DEFAULT_API_SECRET,
        rest_url=venue.http_url,
        ws_url=venue.ws_url,
        provider="sim",
    )


async def _submit(pipe: object, client_order_id: str) -> ControlReply:
    return await pipe.control.submit_order(  # type: ignore[attr-defined,no-any-return]
        "trader",
        client_order_id=client_order_id,
        provider="sim",
        instrument="BTC-USDT",
        side=Side.BUY,
        quantity="0.00100",
        price="50000.00",
    )


def _outcome(reply: ControlReply) -> tuple[bool, str | None, tuple[tuple[str, str], ...]]:
    """A reply's outcome, without the id of the command it answers."""
    return reply.result.ok, reply.result.reason, reply.result.detail


async def _until(condition: Callable[[], object]) -> None:
    """Poll ``condition``: what it watches (sockets, Redis) announces nothing."""
    with trio.fail_after(SETTLE):
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.01)


def _venue_orders(venue: Venue) -> int:
    return sum(venue.exchange.placed.values())


async def test_a_restarted_gateway_refuses_a_duplicate_with_the_original_outcome(
    redis_url: str, redis_prefix: str
) -> None:
    async with open_venue(VenueConfig(market=None)) as venue:
        owner = Owner()
        async with (
            open_binance_orders(_client_config(venue)) as client,
            open_redis_ledger(redis_url, prefix=redis_prefix) as ledger,
            open_test_pipeline(order_clients=[client], order_ledger=ledger) as pipe,
        ):
            await pipe.subscribe("trader", owner, kinds=[])
            first = await _submit(pipe, "o-1")
            assert first.result.ok
            with trio.fail_after(SETTLE):
                await owner.acked.wait()
        assert _venue_orders(venue) == 1

        async with (
            open_binance_orders(_client_config(venue)) as client,
            open_redis_ledger(redis_url, prefix=redis_prefix) as restarted,
            open_test_pipeline(order_clients=[client], order_ledger=restarted) as pipe,
        ):
            assert restarted.statistics().entries == 1  # loaded before serving
            second_owner = Owner()
            await pipe.subscribe("trader", second_owner, kinds=[])
            again = await _submit(pipe, "o-1")
            fresh = await _submit(pipe, "o-2")
            assert _outcome(again) == _outcome(first)
            assert fresh.result.ok
            with trio.fail_after(SETTLE):
                await second_owner.acked.wait()
            assert [r.client_order_id for r in second_owner.reports] == ["o-2"]
            stats = pipe.statistics().orders
            assert (stats.duplicates_refused, stats.submitted) == (1, 1)
    assert venue.exchange.placed.most_common(1)[0][1] == 1  # no key placed twice
    assert _venue_orders(venue) == 2


async def test_two_live_gateways_send_a_shared_order_once(
    redis_url: str, redis_prefix: str
) -> None:
    owners = (Owner(), Owner())
    async with (
        open_venue(VenueConfig(market=None)) as venue,
        open_binance_orders(_client_config(venue)) as client_a,
        open_binance_orders(_client_config(venue)) as client_b,
        open_redis_ledger(redis_url, prefix=redis_prefix) as ledger_a,
        open_redis_ledger(redis_url, prefix=redis_prefix) as ledger_b,
        open_test_pipeline(order_clients=[client_a], order_ledger=ledger_a) as pipe_a,
        open_test_pipeline(order_clients=[client_b], order_ledger=ledger_b) as pipe_b,
    ):
        for pipe, owner in zip((pipe_a, pipe_b), owners, strict=True):
            await pipe.subscribe("trader", owner, kinds=[])
        # Both mirrors were loaded empty: each gateway accepts the order locally...
        replies = [await _submit(pipe, "shared") for pipe in (pipe_a, pipe_b)]
        assert all(reply.result.ok for reply in replies)
        # ...and only the one whose claim came first in Redis sends it.
        await _until(lambda: any(owner.acked.is_set() for owner in owners))
        await _until(
            lambda: sum(p.statistics().orders.claimed_elsewhere for p in (pipe_a, pipe_b))
        )
        claims = [ledger.claims for ledger in (ledger_a, ledger_b)]
        assert sorted(claims) == [(1, 0), (1, 1)]
        loser = ledger_a if ledger_a.claims == (1, 1) else ledger_b
        holder = loser.lookup(OrderKey("trader", "shared"))
        assert holder is not None  # the loser's mirror now holds the winner's entry
        assert _outcome(replies[0]) == _outcome(replies[1])
        assert _venue_orders(venue) == 1


async def test_an_unreadable_entry_holding_the_key_stops_the_order(
    redis_url: str, redis_prefix: str
) -> None:
    async with (
        open_venue(VenueConfig(market=None)) as venue,
        open_binance_orders(_client_config(venue)) as client,
        open_redis_ledger(redis_url, prefix=redis_prefix) as ledger,
    ):
        name = ledger_key(redis_prefix, OrderKey("trader", "garbled"))
        await ledger.link.client.set(name, b"{not json")
        async with open_test_pipeline(order_clients=[client], order_ledger=ledger) as pipe:
            await pipe.subscribe("trader", Owner(), kinds=[])
            assert (await _submit(pipe, "garbled")).result.ok
            await _until(lambda: pipe.statistics().orders.claimed_elsewhere)
        assert ledger.claims == (1, 1)
        assert _venue_orders(venue) == 0  # fail closed


def _entry(client_order_id: str = "o-1") -> LedgerEntry:
    command = SubmitOrder(
        consumer_id="trader",
        client_order_id=client_order_id,
        provider="sim",
        instrument="BTC-USDT",
        side="buy",
        quantity="0.001",
        price="50000",
        decision_id="d-1",
        trace_id="t-1",
    )
    outcome = Outcome(True, None, (("venue_client_order_id", "mt-1"), ("state", "new")))
    return LedgerEntry(
        key=OrderKey("trader", client_order_id), command=command, outcome=outcome, recorded_at=3.0
    )


def test_an_entry_survives_its_round_trip_through_json() -> None:
    entry = _entry()
    decoded, owner = decode_entry(encode_entry(entry, "gw-1"), recorded_at=3.0)
    assert (decoded, owner) == (entry, "gw-1")


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        b'{"owner": "gw", "command": {}, "outcome": {"ok": true}}',
        b'{"owner": 1, "command": {"consumer_id": "c", "client_order_id": "o", "provider": "p",'
        b' "instrument": "i", "side": "buy", "quantity": "1"},'
        b' "outcome": {"ok": true, "reason": null, "detail": []}}',
        b'{"owner": "gw", "command": {"consumer_id": "c", "client_order_id": "o", "provider":'
        b' "p", "instrument": "i", "side": "sideways", "quantity": "1"},'
        b' "outcome": {"ok": true, "reason": null, "detail": []}}',
        b'{"owner": "gw", "command": {"consumer_id": "c", "client_order_id": "o", "provider":'
        b' "p", "instrument": "i", "side": "buy", "quantity": "1"},'
        b' "outcome": {"ok": "yes", "reason": null, "detail": []}}',
    ],
)
def test_anything_else_is_refused_with_a_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_entry(raw, recorded_at=0.0)


def test_keys_are_fixed_length_whatever_the_ids_hold() -> None:
    short = ledger_key("p", OrderKey("c", "o"))
    odd = ledger_key("p", OrderKey("c:with\nodd", "o" * 500))
    assert len(short) == len(odd) == len("p:ledger:") + 32
    assert short != odd


async def test_a_bad_prefix_is_refused(redis_url: str) -> None:
    async with open_redis_ledger(redis_url) as ledger:
        with pytest.raises(ValueError, match="prefix"):
            RedisLedger(ledger.link, prefix="has space")
