"""The matching engine: price-time priority, partial fills, cancels, conservation."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meltica_trio.venue import (
    DuplicateOrderError,
    ExecType,
    MatchingEngine,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Outcome,
    TimeInForce,
    UnknownOrderError,
)

BUY, SELL = OrderSide.BUY, OrderSide.SELL
D = Decimal


def limit(
    owner: str,
    side: OrderSide,
    qty: str,
    price: str,
    *,
    time_in_force: TimeInForce = TimeInForce.GTC,
    client_order_id: str | None = None,
) -> OrderRequest:
    return OrderRequest(
        owner=owner,
        side=side,
        type=OrderType.LIMIT,
        quantity=D(qty),
        price=D(price),
        time_in_force=time_in_force,
        client_order_id=client_order_id,
    )


def market(owner: str, side: OrderSide, qty: str) -> OrderRequest:
    return OrderRequest(owner=owner, side=side, type=OrderType.MARKET, quantity=D(qty))


def test_limit_orders_rest_best_first_without_crossing() -> None:
    engine = MatchingEngine("T")
    engine.submit(limit("a", BUY, "1", "99"), 1)
    engine.submit(limit("a", BUY, "2", "98"), 1)
    engine.submit(limit("a", SELL, "3", "101"), 1)
    bids, asks = engine.depth()
    assert bids == [(D(99), D(1)), (D(98), D(2))]
    assert asks == [(D(101), D(3))]


def test_crossing_limit_fills_at_maker_price_and_rests_the_rest() -> None:
    engine = MatchingEngine("T")
    maker = engine.submit(limit("m", SELL, "1", "100"), 1).order
    out = engine.submit(limit("t", BUY, "3", "105"), 2)
    assert [(f.price, f.quantity, f.maker_order_id) for f in out.fills] == [
        (D(100), D(1), maker.order_id)
    ]
    assert out.order.status is OrderStatus.PARTIALLY_FILLED
    assert out.order.filled == D(1)
    assert engine.depth() == ([(D(105), D(2))], [])


def test_same_price_fills_in_arrival_order() -> None:
    engine = MatchingEngine("T")
    first = engine.submit(limit("m1", SELL, "1", "100"), 1).order
    second = engine.submit(limit("m2", SELL, "1", "100"), 2).order
    out = engine.submit(market("t", BUY, "1.5"), 3)
    assert [(f.maker_order_id, f.quantity) for f in out.fills] == [
        (first.order_id, D(1)),
        (second.order_id, D("0.5")),
    ]
    assert engine.order("m2", order_id=second.order_id).remaining == D("0.5")


def test_better_price_fills_before_earlier_order() -> None:
    engine = MatchingEngine("T")
    engine.submit(limit("m", SELL, "1", "101"), 1)
    better = engine.submit(limit("m", SELL, "1", "100"), 2).order
    out = engine.submit(market("t", BUY, "1"), 3)
    assert out.fills[0].maker_order_id == better.order_id


def test_market_order_sweeps_levels_and_expires_what_the_book_cannot_fill() -> None:
    engine = MatchingEngine("T")
    engine.submit(limit("m", SELL, "1", "100"), 1)
    engine.submit(limit("m", SELL, "1", "101"), 1)
    out = engine.submit(market("t", BUY, "3"), 2)
    assert [f.price for f in out.fills] == [D(100), D(101)]
    assert out.order.status is OrderStatus.EXPIRED
    assert out.order.filled == D(2)
    taker = [r for r in out.reports if r.order.owner == "t"]
    assert [r.exec_type for r in taker] == [
        ExecType.NEW,
        ExecType.TRADE,
        ExecType.TRADE,
        ExecType.EXPIRED,
    ]
    assert engine.depth() == ([], [])


def test_ioc_expires_remainder_and_fok_fills_all_or_nothing() -> None:
    engine = MatchingEngine("T")
    engine.submit(limit("m", SELL, "1", "100"), 1)
    fok = engine.submit(limit("t", BUY, "2", "100", time_in_force=TimeInForce.FOK), 2)
    assert fok.fills == ()
    assert fok.order.status is OrderStatus.EXPIRED
    ioc = engine.submit(limit("t", BUY, "2", "100", time_in_force=TimeInForce.IOC), 3)
    assert ioc.order.filled == D(1)
    assert ioc.order.status is OrderStatus.EXPIRED
    assert engine.depth() == ([], [])


def test_cancel_removes_the_order_and_reports_canceled() -> None:
    engine = MatchingEngine("T")
    order = engine.submit(limit("a", BUY, "1", "99", client_order_id="x1"), 1).order
    out = engine.cancel("a", client_order_id="x1", cancel_client_order_id="c1", now_ms=2)
    assert out.order.status is OrderStatus.CANCELED
    assert out.reports[-1].exec_type is ExecType.CANCELED
    assert out.reports[-1].cancel_client_order_id == "c1"
    assert engine.depth() == ([], [])
    with pytest.raises(UnknownOrderError):
        engine.cancel("a", order_id=order.order_id, now_ms=3)
    with pytest.raises(UnknownOrderError):
        engine.cancel("someone-else", order_id=order.order_id, now_ms=3)


def test_duplicate_client_order_id_is_refused_only_while_open() -> None:
    engine = MatchingEngine("T")
    engine.submit(limit("a", BUY, "1", "99", client_order_id="dup"), 1)
    with pytest.raises(DuplicateOrderError):
        engine.submit(limit("a", BUY, "1", "98", client_order_id="dup"), 2)
    engine.submit(limit("b", BUY, "1", "98", client_order_id="dup"), 2)  # another owner
    engine.submit(market("t", SELL, "1"), 3)  # fills a's order at 99
    again = engine.submit(limit("a", BUY, "1", "97", client_order_id="dup"), 4)
    assert engine.order("a", client_order_id="dup").order_id == again.order.order_id


def test_update_ids_are_contiguous_across_calls() -> None:
    engine = MatchingEngine("T")
    outs = [
        engine.submit(limit("m", SELL, "1", "100"), 1),
        engine.submit(limit("m", SELL, "1", "101"), 1),
        engine.submit(market("t", BUY, "1.5"), 2),
    ]
    ids = [c.update_id for out in outs for c in out.changes]
    assert ids == list(range(1, len(ids) + 1))
    assert engine.update_id == ids[-1]


# -- properties against a reference model ----------------------------------------------


@attrs.define
class RefOrder:
    order_id: int
    side: OrderSide
    price: Decimal
    remaining: Decimal


def expected_fills(book: list[RefOrder], req: OrderRequest) -> list[tuple[int, Decimal, Decimal]]:
    """Price-time priority the slow way: sort the opposite side, walk it."""
    opposite = [o for o in book if o.side is not req.side]
    buy = req.side is BUY
    opposite.sort(key=lambda o: (o.price if buy else -o.price, o.order_id))
    need, fills = req.quantity, []
    for o in opposite:
        if need == 0:
            break
        if req.price is not None and (o.price > req.price if buy else o.price < req.price):
            break
        qty = min(need, o.remaining)
        fills.append((o.order_id, o.price, qty))
        need -= qty
    if req.time_in_force is TimeInForce.FOK and need > 0:
        return []
    return fills


def levels(book: list[RefOrder], side: OrderSide) -> list[tuple[Decimal, Decimal]]:
    totals: dict[Decimal, Decimal] = {}
    for o in book:
        if o.side is side:
            totals[o.price] = totals.get(o.price, D(0)) + o.remaining
    return sorted(totals.items(), reverse=side is BUY)


orders = st.builds(
    OrderRequest,
    owner=st.sampled_from(["a", "b"]),
    side=st.sampled_from(OrderSide),
    type=st.sampled_from(OrderType),
    quantity=st.integers(1, 20).map(lambda n: D(n) / 4),
    price=st.integers(95, 105).map(D),
    time_in_force=st.sampled_from(TimeInForce),
)
ops = st.lists(st.one_of(orders, st.integers(0, 50)), max_size=60)


def check_outcome(out: Outcome, book: list[RefOrder], req: OrderRequest) -> None:
    fills = [(f.maker_order_id, f.price, f.quantity) for f in out.fills]
    assert fills == expected_fills(book, req)
    assert out.order.filled == sum((f.quantity for f in out.fills), D(0))
    assert out.order.filled + out.order.remaining == out.order.quantity
    for report in out.reports:
        o = report.order
        assert o.filled + o.remaining == o.quantity
        assert o.remaining >= 0
        assert o.quote_filled >= 0


@settings(max_examples=300, deadline=None)
@given(ops)
def test_random_flows_match_the_reference_and_keep_the_book_uncrossed(
    flow: list[OrderRequest | int],
) -> None:
    engine = MatchingEngine("T")
    book: list[RefOrder] = []
    last_update = 0
    for step, op in enumerate(flow):
        if isinstance(op, int):
            open_ids = [o.order_id for o in book]
            if not open_ids:
                continue
            victim = open_ids[op % len(open_ids)]
            target = next(o for o in engine.open_orders() if o.order_id == victim)
            out = engine.cancel(target.owner, order_id=victim, now_ms=step)
            book = [o for o in book if o.order_id != victim]
        else:
            req = op if op.type is OrderType.LIMIT else attrs.evolve(op, price=None)
            out = engine.submit(req, step)
            check_outcome(out, book, req)
            for maker_id, _, qty in ((f.maker_order_id, f.price, f.quantity) for f in out.fills):
                ref = next(o for o in book if o.order_id == maker_id)
                ref.remaining -= qty
            book = [o for o in book if o.remaining > 0]
            if out.order.working:
                assert req.price is not None
                book.append(RefOrder(out.order.order_id, req.side, req.price, out.order.remaining))
        ids = [c.update_id for c in out.changes]
        assert ids == list(range(last_update + 1, last_update + 1 + len(ids)))
        last_update = engine.update_id
        bids, asks = engine.depth()
        assert bids == levels(book, BUY)
        assert asks == levels(book, SELL)
        if bids and asks:
            assert bids[0][0] < asks[0][0]


@settings(max_examples=100, deadline=None)
@given(st.lists(orders, max_size=40))
def test_fills_conserve_quantity_per_order(flow: list[OrderRequest]) -> None:
    engine = MatchingEngine("T")
    traded: dict[int, Decimal] = {}
    views = {}
    for step, req in enumerate(flow):
        out = engine.submit(
            req if req.type is OrderType.LIMIT else attrs.evolve(req, price=None), step
        )
        for f in out.fills:
            for oid in (f.maker_order_id, f.taker_order_id):
                traded[oid] = traded.get(oid, D(0)) + f.quantity
        for report in out.reports:
            views[report.order.order_id] = report.order
    for oid, view in views.items():
        assert traded.get(oid, D(0)) == view.filled
        assert view.filled + view.remaining == view.quantity
