"""The order gateway: idempotency, safe retries, reports to owners only."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
import trio
import trio.testing
from orders_fakes import FakeVenue, Sink, until

from meltica_trio.bus import CancelOrder, ControlBus, ControlReply, QueryOrder, SubmitOrder
from meltica_trio.events import OrderState
from meltica_trio.orders import (
    NEXT,
    TERMINAL,
    MemoryLedger,
    OrderGateway,
    OrderKey,
    RetryPolicy,
    StreamGap,
    VenueOrder,
    VenueUpdate,
    venue_client_order_id,
)

ACK, PARTIAL, FILLED = OrderState.ACK, OrderState.PARTIAL, OrderState.FILLED
CANCELLED, REJECTED = OrderState.CANCELLED, OrderState.REJECTED


def submit(
    client_order_id: str = "o-1",
    consumer_id: str = "c1",
    *,
    quantity: str = "1.5",
    price: str | None = "100.25",
    provider: str = "fake",
    instrument: str = "BTC-USDT",
) -> SubmitOrder:
    return SubmitOrder(
        consumer_id=consumer_id,
        client_order_id=client_order_id,
        provider=provider,
        instrument=instrument,
        side="buy",
        quantity=quantity,
        price=price,
        decision_id=f"d-{consumer_id}-{client_order_id}",
        trace_id=f"t-{consumer_id}-{client_order_id}",
    )


def make(venue: FakeVenue, sink: Sink, **kwargs: object) -> tuple[OrderGateway, ControlBus]:
    gateway = OrderGateway([venue], sink, **kwargs)  # type: ignore[arg-type]
    bus = ControlBus(lambda *_: None, lambda: 0)
    gateway.register(bus)
    return gateway, bus


def accepted(reply: ControlReply) -> ControlReply:
    assert reply.ack.accepted, reply.ack.reason
    assert reply.result.ok, reply.result.reason
    return reply


def vcoid(client_order_id: str = "o-1", consumer_id: str = "c1") -> str:
    return venue_client_order_id(OrderKey(consumer_id, client_order_id))


def check_report_sequence(states: list[OrderState]) -> None:
    """ACK first (or REJECTED alone), allowed steps only, one terminal state at the end."""
    previous = OrderState.NEW
    for state in states:
        assert state in NEXT[previous], (previous, state, states)
        previous = state
    assert previous in TERMINAL, states


async def test_ten_thousand_orders_under_faults_make_one_venue_order_each(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(seed=7, p_lost=0.1, p_unknown=0.1, p_query_fail=0.1, p_dup=0.3, p_replay=0.1)
    consumers = [f"c{i}" for i in range(10)]
    # Every consumer reuses the same client order ids: keys differ only by consumer.
    commands = [submit(f"o-{i // 10}", consumers[i % 10], quantity="2.5") for i in range(10_000)]
    sink = Sink(expected=len(commands))
    gateway, bus = make(venue, sink, queue_capacity=16_384, retry=RetryPolicy(max_attempts=10))
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        for command in commands:
            accepted(bus.handle(command))
        await sink.done.wait()
        nursery.cancel_scope.cancel()

    assert len(venue.created) == len(commands)
    assert set(venue.created.values()) == {1}
    assert venue.duplicate_submits == 0
    exec_ids = [r.exec_id for _, r, _, _ in sink.reports]
    assert len(exec_ids) == len(set(exec_ids))
    by_order = defaultdict(list)
    for consumer_id, report, decision_id, trace_id in sink.reports:
        assert report.consumer_id == consumer_id
        assert decision_id == f"d-{consumer_id}-{report.client_order_id}"
        assert trace_id == f"t-{consumer_id}-{report.client_order_id}"
        assert Decimal(report.filled) + Decimal(report.remaining) == Decimal(report.quantity)
        by_order[(consumer_id, report.client_order_id)].append(report)
    assert len(by_order) == len(commands)
    for reports in by_order.values():
        check_report_sequence([r.state for r in reports])
        assert reports[-1].state is FILLED
        fills = sum(Decimal(r.last_fill_size or "0") for r in reports)
        assert fills == Decimal("2.5")
    stats = gateway.statistics()
    assert stats.submitted == stats.venue_orders == len(commands)
    assert stats.exec_reports == len(sink.reports)
    assert stats.retries > 0
    assert stats.reconciled > 0
    assert stats.duplicate_updates > 0
    assert stats.unresolved == stats.rejected == stats.invalid_transitions == 0


async def test_duplicate_submit_returns_the_original_outcome_and_places_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue()
    sink = Sink()
    gateway, bus = make(venue, sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        first = accepted(bus.handle(submit()))
        await sink.done.wait()
        again = accepted(bus.handle(submit()))  # a new command_id, the same order
        nursery.cancel_scope.cancel()
    assert again.result.detail == first.result.detail
    assert dict(first.result.detail)["state"] == "new"
    assert venue.submits[vcoid()] == 1
    stats = gateway.statistics()
    assert (stats.submitted, stats.duplicates_refused, stats.venue_orders) == (1, 1, 1)
    assert sink.states("o-1") == [ACK, PARTIAL, FILLED] or sink.states("o-1")[-1] is FILLED


async def test_a_reused_client_order_id_with_other_parameters_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, bus = make(FakeVenue(), Sink())
    accepted(bus.handle(submit(quantity="1.5")))
    assert accepted(bus.handle(submit(quantity="1.50"))).result.detail  # same decimal value
    reply = bus.handle(submit(quantity="2"))
    assert not reply.ack.accepted
    assert "another order" in str(reply.ack.reason)


async def test_the_same_client_order_id_of_two_consumers_is_two_orders(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue()
    sink = Sink(expected=2)
    gateway, bus = make(venue, sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit("o-1", "alice")))
        accepted(bus.handle(submit("o-1", "bob")))
        await sink.done.wait()
        nursery.cancel_scope.cancel()
    assert len(venue.created) == 2
    alice = gateway.order_of("alice", "o-1")
    assert alice is not None
    assert (alice.consumer_id, alice.provider, alice.instrument) == ("alice", "fake", "BTC-USDT")
    assert gateway.order_of("carol", "o-1") is None
    for consumer_id, report, decision_id, trace_id in sink.reports:
        assert report.consumer_id == consumer_id
        assert (decision_id, trace_id) == (f"d-{consumer_id}-o-1", f"t-{consumer_id}-o-1")
    assert sink.states("o-1", "alice")[-1] is sink.states("o-1", "bob")[-1] is FILLED


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"provider": "nowhere"}, "unknown provider"),
        ({"quantity": "0"}, "above zero"),
        ({"quantity": "-1"}, "not a plain decimal"),
        ({"quantity": "1e3"}, "not a plain decimal"),
        ({"quantity": "abc"}, "not a plain decimal"),
        ({"price": "0.0"}, "above zero"),
        ({"price": "NaN"}, "not a plain decimal"),
        ({"instrument": "btcusdt"}, "canonical instrument"),
        ({"client_order_id": ""}, "client_order_id"),
        ({"client_order_id": "x" * 65}, "client_order_id"),
    ],
)
async def test_malformed_submits_are_refused_and_change_nothing(
    change: dict[str, str], reason: str
) -> None:
    venue = FakeVenue()
    gateway, bus = make(venue, Sink())
    fields = {"client_order_id": "o-1", "quantity": "1", "price": "10"} | change
    reply = bus.handle(submit(**fields))  # type: ignore[arg-type]
    assert not reply.ack.accepted
    assert reason in str(reply.ack.reason)
    assert gateway.statistics().submitted == 0
    assert gateway.ledger.statistics().entries == 0


async def test_a_market_order_needs_no_price(autojump_clock: trio.testing.MockClock) -> None:
    venue = FakeVenue()
    sink = Sink()
    gateway, bus = make(venue, sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit(price=None)))
        await sink.done.wait()
        nursery.cancel_scope.cancel()
    assert sink.reports[-1][1].price is None
    assert sink.reports[-1][1].state is FILLED


async def test_a_full_queue_refuses_new_orders_without_recording_them() -> None:
    gateway, bus = make(FakeVenue(), Sink(), workers=1, queue_capacity=2)
    accepted(bus.handle(submit("a")))
    accepted(bus.handle(submit("b")))
    reply = bus.handle(submit("c"))
    assert not reply.ack.accepted
    assert "busy" in str(reply.ack.reason)
    assert gateway.ledger.statistics().entries == 2


async def test_a_gateway_that_stopped_refuses_orders(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gateway, bus = make(FakeVenue(), Sink())
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        nursery.cancel_scope.cancel()
    reply = bus.handle(submit())
    assert "not running" in str(reply.ack.reason)


async def test_a_timed_out_submit_that_landed_is_adopted_after_the_settle_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(p_unknown=1.0, stream=False)
    sink = Sink()
    gateway, bus = make(venue, sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit()))
        await sink.done.wait()
        nursery.cancel_scope.cancel()
    kinds = [(kind, at) for kind, _, at in venue.calls]
    assert [k for k, _ in kinds] == ["submit", "query"]
    assert kinds[1][1] - kinds[0][1] >= venue.settle_time
    assert venue.created[vcoid()] == 1
    assert sink.states("o-1") == [ACK, FILLED]  # the query found it filled
    stats = gateway.statistics()
    assert (stats.reconciled, stats.venue_orders, stats.retries) == (1, 1, 0)


async def test_the_stream_reporting_an_uncertain_order_frees_its_worker_before_the_settle_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(p_unknown=1.0)  # each submit lands, its answer is lost, the stream tells
    sink = Sink(expected=2)
    gateway, bus = make(venue, sink, workers=1)  # the second order waits for the first
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit("o-1")))
        accepted(bus.handle(submit("o-2")))
        await sink.done.wait()
        nursery.cancel_scope.cancel()
    calls = [(kind, at) for kind, _, at in venue.calls]
    assert [kind for kind, _ in calls] == ["submit", "submit"]  # adopted, never queried
    assert calls[1][1] - calls[0][1] < venue.settle_time
    assert set(venue.created.values()) == {1}
    stats = gateway.statistics()
    assert (stats.reconciled, stats.venue_orders, stats.retries) == (2, 2, 0)


async def test_a_lost_submit_is_resent_with_the_same_id_only_after_the_venue_says_absent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(lose_submits=1)
    sink = Sink()
    gateway, bus = make(venue, sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit()))
        await sink.done.wait()
        nursery.cancel_scope.cancel()
    assert [kind for kind, _, _ in venue.calls] == ["submit", "query", "submit"]
    assert {v for _, v, _ in venue.calls} == {vcoid()}
    assert venue.created[vcoid()] == 1
    assert gateway.statistics().retries == 1
    check_report_sequence(sink.states("o-1"))


async def test_a_duplicate_reported_by_the_venue_is_reconciled_not_resent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(auto_fill=False, stream=False)
    sink = Sink()
    gateway, bus = make(venue, sink)
    # An earlier incarnation of the gateway placed this order already.
    original = submit()
    venue.place(
        VenueOrder(
            venue_client_order_id=vcoid(), instrument="BTC-USDT", side="buy", quantity="1.5"
        )
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(original))
        await until(lambda: gateway.statistics().reconciled)
        nursery.cancel_scope.cancel()
    assert [kind for kind, _, _ in venue.calls] == ["submit", "query"]
    assert venue.created[vcoid()] == 1
    assert venue.duplicate_submits == 1
    assert sink.states("o-1") == [ACK]


async def test_a_definite_venue_refusal_ends_the_order_rejected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(reject="Account has insufficient balance for requested action.")
    sink = Sink()
    gateway, bus = make(venue, sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit()))
        await sink.done.wait()
        nursery.cancel_scope.cancel()
    [(_, report, _, _)] = sink.reports
    assert report.state is REJECTED
    assert "insufficient balance" in str(report.reason)
    assert (report.filled, report.remaining) == ("0.0", "1.5")
    assert gateway.statistics().venue_orders == 0


async def test_an_order_never_placed_after_every_attempt_is_rejected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(p_lost=1.0)
    sink = Sink()
    gateway, bus = make(venue, sink, retry=RetryPolicy(max_attempts=3))
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit()))
        await sink.done.wait()
        nursery.cancel_scope.cancel()
    assert [kind for kind, _, _ in venue.calls] == ["submit", "query"] * 3
    assert sink.states("o-1") == [REJECTED]
    assert "3 attempts" in str(sink.reports[0][1].reason)


async def test_an_order_whose_placement_stays_unknown_is_kept_and_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(p_unknown=1.0, p_query_fail=1.0, stream=False)
    sink = Sink()
    gateway, bus = make(venue, sink, retry=RetryPolicy(max_attempts=2))
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit()))
        await until(lambda: gateway.statistics().unresolved)
        # The venue answers again and the stream reconnects: the order is found.
        venue.p_query_fail = 0.0
        venue.push(venue.snapshot(venue.orders[vcoid()]))
        await sink.done.wait()
        nursery.cancel_scope.cancel()
    assert venue.created[vcoid()] == 1
    assert sink.states("o-1")[-1] is FILLED


async def test_cancel_reports_cancelled_once_even_when_its_answer_is_lost(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(auto_fill=False, p_cancel_unknown=1.0, p_dup=1.0)
    sink = Sink()
    gateway, bus = make(venue, sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit()))
        await until(lambda: sink.reports)
        reply = accepted(bus.handle(CancelOrder(consumer_id="c1", client_order_id="o-1")))
        assert ("cancel", "requested") in reply.result.detail
        await sink.done.wait()
        await trio.sleep(10)  # the retry's -2011 and the query that follows
        nursery.cancel_scope.cancel()
    assert sink.states("o-1") == [ACK, CANCELLED]
    assert [k for k, _, _ in venue.calls].count("cancel") == 2
    refused = bus.handle(CancelOrder(consumer_id="c1", client_order_id="o-1"))
    assert "already cancelled" in str(refused.ack.reason)


async def test_orders_of_other_consumers_cannot_be_cancelled_or_queried() -> None:
    _, bus = make(FakeVenue(), Sink())
    accepted(bus.handle(submit("o-1", "alice")))
    for command in (
        CancelOrder(consumer_id="bob", client_order_id="o-1"),
        QueryOrder(consumer_id="bob", client_order_id="o-1"),
    ):
        reply = bus.handle(command)
        assert not reply.ack.accepted
        assert "no order 'o-1' for consumer 'bob'" in str(reply.ack.reason)


async def test_query_answers_the_known_state_and_refreshes_from_the_venue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(auto_fill=False, stream=False)
    sink = Sink()
    gateway, bus = make(venue, sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit()))
        await until(lambda: sink.reports)
        venue.trade(venue.orders[vcoid()], Decimal("1.5"), emit=False)  # a fill nobody heard
        reply = accepted(bus.handle(QueryOrder(consumer_id="c1", client_order_id="o-1")))
        assert dict(reply.result.detail)["state"] == "ack"
        await sink.done.wait()
        nursery.cancel_scope.cancel()
    assert sink.states("o-1") == [ACK, FILLED]
    assert sink.reports[-1][1].last_fill_size == "1.5"


async def test_a_stream_reconnection_reconciles_live_orders(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(auto_fill=False, stream=False)
    sink = Sink()
    gateway, bus = make(venue, sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit()))
        await until(lambda: sink.reports)
        venue.trade(venue.orders[vcoid()], Decimal("0.5"), emit=False)
        venue.push(StreamGap("fake", "reconnected"))
        await until(lambda: len(sink.reports) >= 2)
        nursery.cancel_scope.cancel()
    assert sink.states("o-1") == [ACK, PARTIAL]
    assert sink.reports[-1][1].filled == "0.5"
    assert sink.reports[-1][1].remaining == "1.0"


class _GapDuringSubmit(FakeVenue):
    """Fills the order and restarts the stream while the submit's answer is on its way:
    the fill is published before the new stream follows the account (no one hears it),
    and the resync comes while the order is not yet known to be placed."""

    async def submit(self, order: VenueOrder) -> VenueUpdate:
        answer = await super().submit(order)
        self.trade(self.orders[order.venue_client_order_id], Decimal("0.5"), emit=False)
        self.push(StreamGap("fake", "reconnected"))
        await trio.testing.wait_all_tasks_blocked()  # the gateway has taken the gap
        return answer


async def test_a_stream_restart_during_a_submit_has_the_placed_order_queried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = _GapDuringSubmit(auto_fill=False, stream=False)  # the stream tells nothing
    sink = Sink()
    gateway, bus = make(venue, sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit()))
        with trio.fail_after(60):
            await until(lambda: len(sink.reports) >= 2)
        nursery.cancel_scope.cancel()
    assert sink.states("o-1") == [ACK, PARTIAL]
    assert sink.reports[-1][1].filled == "0.5"


async def test_contradicting_venue_updates_are_counted_not_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(auto_fill=False)
    sink = Sink()
    gateway, bus = make(venue, sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit()))
        await until(lambda: sink.reports)
        bogus = VenueUpdate(venue_client_order_id=vcoid(), exec_id="x:1", state=FILLED, filled="9")
        stranger = VenueUpdate(
            venue_client_order_id="mt-other", exec_id="y", state=ACK, filled="0"
        )
        venue.push(bogus)
        venue.push(stranger)
        await until(lambda: gateway.statistics().unknown_updates)
        nursery.cancel_scope.cancel()
    assert sink.states("o-1") == [ACK]
    stats = gateway.statistics()
    assert (stats.invalid_transitions, stats.unknown_updates) == (1, 1)


async def test_an_expired_ledger_entry_frees_the_key_of_an_ended_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue()
    sink = Sink()
    gateway, bus = make(venue, sink, ledger=MemoryLedger(ttl=60))
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.serve)
        accepted(bus.handle(submit()))
        await sink.done.wait()
        accepted(bus.handle(submit()))
        assert gateway.statistics().duplicates_refused == 1
        await trio.sleep(61)
        sink.done = trio.Event()
        sink.terminal = 0
        accepted(bus.handle(submit()))  # a new order now
        await sink.done.wait()
        nursery.cancel_scope.cancel()
    assert gateway.statistics().submitted == 2
    assert venue.submits[vcoid()] == 2
