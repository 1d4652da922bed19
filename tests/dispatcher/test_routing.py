"""Subscriptions and the routing table: filters, cached lookups, versions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from meltica_trio import Kind, Recycler
from meltica_trio.bus import Lane
from meltica_trio.dispatcher import RoutingTable, Subscription

_PROVIDERS: Final = ("binance", "okx", "bybit")
_INSTRUMENTS: Final = ("BTC-USDT", "ETH-USDT", "SOL-USDT")
_CONSUMERS: Final = ("alpha", "beta", "gamma", "delta")


def _lane(consumer_id: str, recycler: Recycler) -> Lane:
    return Lane(consumer_id, 16, recycler, on_book_lost=lambda _p, _i: None, wall_clock=lambda: 0)


# -- Subscription filters ------------------------------------------------------------


def test_none_filters_match_every_value() -> None:
    subscription = Subscription(consumer_id="alpha")

    assert (subscription.instruments, subscription.kinds, subscription.providers) == (
        None,
        None,
        None,
    )
    assert all(
        subscription.matches(provider, instrument, kind)
        for provider in _PROVIDERS
        for instrument in _INSTRUMENTS
        for kind in Kind
    )


def test_string_filter_is_one_value_not_its_characters() -> None:
    subscription = Subscription(consumer_id="alpha", instruments="BTC-USDT", providers="okx")

    assert subscription.instruments == frozenset({"BTC-USDT"})
    assert subscription.providers == frozenset({"okx"})
    assert subscription.matches("okx", "BTC-USDT", Kind.TRADE)
    assert not subscription.matches("o", "B", Kind.TRADE)


def test_iterable_filters_are_frozen_sets() -> None:
    instruments = ["BTC-USDT", "ETH-USDT", "BTC-USDT"]
    subscription = Subscription(consumer_id="alpha", instruments=instruments)
    instruments.append("SOL-USDT")  # the subscription does not share the caller's list

    assert subscription.instruments == frozenset({"BTC-USDT", "ETH-USDT"})


def test_kinds_given_as_strings_become_kinds() -> None:
    many = Subscription(consumer_id="alpha", kinds=["trade", Kind.TICKER])
    one = Subscription(consumer_id="alpha", kinds="book_delta")

    assert many.kinds == frozenset({Kind.TRADE, Kind.TICKER})
    assert all(type(kind) is Kind for kind in many.kinds)
    assert one.kinds == frozenset({Kind.BOOK_DELTA})
    assert one.matches("okx", "BTC-USDT", Kind.BOOK_DELTA)


@pytest.mark.parametrize("kinds", ["trades", ["trade", "nope"], ["TRADE"]])
def test_unknown_kind_is_rejected(kinds: str | list[str]) -> None:
    with pytest.raises(ValueError, match="is not a valid Kind"):
        Subscription(consumer_id="alpha", kinds=kinds)


def test_empty_filter_matches_nothing() -> None:
    subscription = Subscription(consumer_id="alpha", kinds=[])

    assert subscription.kinds == frozenset()
    assert not any(subscription.matches("okx", "BTC-USDT", kind) for kind in Kind)


@pytest.mark.parametrize(
    ("provider", "instrument", "kind", "expected"),
    [
        ("okx", "BTC-USDT", Kind.TRADE, True),
        ("binance", "BTC-USDT", Kind.TRADE, False),
        ("okx", "ETH-USDT", Kind.TRADE, False),
        ("okx", "BTC-USDT", Kind.TICKER, False),
    ],
)
def test_an_event_matches_only_when_every_filter_does(
    provider: str, instrument: str, kind: Kind, expected: bool
) -> None:
    subscription = Subscription(
        consumer_id="alpha", instruments="BTC-USDT", kinds="trade", providers="okx"
    )

    assert subscription.matches(provider, instrument, kind) is expected


def test_subscriptions_are_values() -> None:
    first = Subscription(consumer_id="alpha", kinds=["trade"], providers=["okx"])
    second = Subscription(consumer_id="alpha", kinds=[Kind.TRADE], providers="okx")

    assert first == second
    assert hash(first) == hash(second)


# -- RoutingTable ----------------------------------------------------------------------


def test_table_routes_an_event_to_every_matching_lane(recycler: Recycler) -> None:
    table = RoutingTable()
    trades, okx, everything = (_lane(c, recycler) for c in ("trades", "okx", "all"))
    table.set(Subscription(consumer_id="trades", kinds="trade"), trades)
    table.set(Subscription(consumer_id="okx", providers="okx"), okx)
    table.set(Subscription(consumer_id="all"), everything)

    assert table.lanes_for("okx", "BTC-USDT", Kind.TRADE) == (trades, okx, everything)
    assert table.lanes_for("binance", "BTC-USDT", Kind.TRADE) == (trades, everything)
    assert table.lanes_for("binance", "BTC-USDT", Kind.TICKER) == (everything,)
    assert len(table) == 3


def test_repeated_lookup_is_served_from_the_cache(recycler: Recycler) -> None:
    table = RoutingTable()
    table.set(Subscription(consumer_id="alpha"), _lane("alpha", recycler))

    first = table.lanes_for("okx", "BTC-USDT", Kind.TRADE)
    assert table.lanes_for("okx", "BTC-USDT", Kind.TRADE) is first


def test_set_invalidates_the_cache(recycler: Recycler) -> None:
    table = RoutingTable()
    alpha, beta = _lane("alpha", recycler), _lane("beta", recycler)
    assert table.lanes_for("okx", "BTC-USDT", Kind.TRADE) == ()

    table.set(Subscription(consumer_id="alpha", kinds="trade"), alpha)
    assert table.lanes_for("okx", "BTC-USDT", Kind.TRADE) == (alpha,)
    table.set(Subscription(consumer_id="beta"), beta)
    assert table.lanes_for("okx", "BTC-USDT", Kind.TRADE) == (alpha, beta)
    table.set(Subscription(consumer_id="alpha", kinds="ticker"), alpha)  # narrowed
    assert table.lanes_for("okx", "BTC-USDT", Kind.TRADE) == (beta,)


def test_remove_invalidates_the_cache(recycler: Recycler) -> None:
    table = RoutingTable()
    alpha, beta = _lane("alpha", recycler), _lane("beta", recycler)
    table.set(Subscription(consumer_id="alpha"), alpha)
    table.set(Subscription(consumer_id="beta"), beta)
    assert table.lanes_for("okx", "BTC-USDT", Kind.TRADE) == (alpha, beta)

    table.remove("alpha")
    assert table.lanes_for("okx", "BTC-USDT", Kind.TRADE) == (beta,)
    assert table.subscription("alpha") is None
    assert len(table) == 1


def test_version_bumps_on_every_change(recycler: Recycler) -> None:
    table = RoutingTable()
    lane = _lane("alpha", recycler)
    assert table.version == 1

    versions = [
        table.set(Subscription(consumer_id="alpha"), lane),
        table.set(Subscription(consumer_id="alpha", kinds="trade"), lane),  # a replacement
        table.set(Subscription(consumer_id="beta"), _lane("beta", recycler)),
        table.remove("alpha"),
    ]
    assert versions == [2, 3, 4, 5]
    assert table.version == 5


def test_lookup_does_not_change_the_version(recycler: Recycler) -> None:
    table = RoutingTable()
    table.set(Subscription(consumer_id="alpha"), _lane("alpha", recycler))
    table.lanes_for("okx", "BTC-USDT", Kind.TRADE)

    assert table.version == 2


def test_removing_an_unknown_consumer_raises_key_error(recycler: Recycler) -> None:
    table = RoutingTable()
    table.set(Subscription(consumer_id="alpha"), _lane("alpha", recycler))

    with pytest.raises(KeyError, match="beta"):
        table.remove("beta")
    assert table.version == 2
    assert len(table) == 1


def test_subscription_returns_the_current_one(recycler: Recycler) -> None:
    table = RoutingTable()
    lane = _lane("alpha", recycler)
    table.set(Subscription(consumer_id="alpha"), lane)
    table.set(Subscription(consumer_id="alpha", kinds="trade"), lane)

    assert table.subscription("alpha") == Subscription(consumer_id="alpha", kinds="trade")
    assert table.subscription("beta") is None


# -- lookups against a brute-force scan ----------------------------------------------


def _optional_subset(values: Iterable[str]) -> st.SearchStrategy[frozenset[str] | None]:
    return st.none() | st.frozensets(st.sampled_from(tuple(values)))


_FILTERS: Final = st.tuples(
    st.sampled_from(_CONSUMERS),
    _optional_subset(_INSTRUMENTS),
    st.none() | st.frozensets(st.sampled_from(list(Kind))),
    _optional_subset(_PROVIDERS),
)
_KEYS: Final = st.tuples(
    st.sampled_from(_PROVIDERS), st.sampled_from(_INSTRUMENTS), st.sampled_from(list(Kind))
)
_STEPS: Final = st.lists(
    st.one_of(
        st.tuples(st.just("set"), _FILTERS),
        st.tuples(st.just("remove"), st.sampled_from(_CONSUMERS)),
        st.tuples(st.just("lookup"), _KEYS),
    ),
    max_size=60,
)

_Filters = tuple[str, frozenset[str] | None, frozenset[Kind] | None, frozenset[str] | None]


@settings(max_examples=200, deadline=None)
@given(steps=_STEPS)
def test_lookups_agree_with_a_brute_force_scan_after_any_changes(
    steps: list[tuple[str, object]],
) -> None:
    recycler = Recycler(debug=True)
    lanes = {consumer: _lane(consumer, recycler) for consumer in _CONSUMERS}
    table = RoutingTable()
    model: dict[str, _Filters] = {}  # insertion order is routing order, as in a dict
    version = table.version

    def scan(provider: str, instrument: str, kind: Kind) -> tuple[Lane, ...]:
        return tuple(
            lanes[consumer]
            for consumer, (_, instruments, kinds, providers) in model.items()
            if (instruments is None or instrument in instruments)
            and (kinds is None or kind in kinds)
            and (providers is None or provider in providers)
        )

    for op, arg in steps:
        if op == "set":
            filters: _Filters = arg  # type: ignore[assignment]
            consumer, instruments, kinds, providers = filters
            subscription = Subscription(
                consumer_id=consumer, instruments=instruments, kinds=kinds, providers=providers
            )
            assert table.set(subscription, lanes[consumer]) == version + 1
            model[consumer] = filters
            version += 1
        elif op == "remove":
            consumer = arg  # type: ignore[assignment]
            if consumer in model:
                assert table.remove(consumer) == version + 1
                del model[consumer]
                version += 1
            else:
                with pytest.raises(KeyError):
                    table.remove(consumer)
        else:
            key: tuple[str, str, Kind] = arg  # type: ignore[assignment]
            assert table.lanes_for(*key) == scan(*key)
        assert table.version == version
        assert len(table) == len(model)
    for key in [(p, i, k) for p in _PROVIDERS for i in _INSTRUMENTS for k in Kind]:
        assert table.lanes_for(*key) == scan(*key)
