"""MergeRule: validation with errors that name the key, and the derived key and provider."""

from __future__ import annotations

from typing import Any

import pytest

from meltica_trio import ConfigError, Kind
from meltica_trio.orchestrator import MERGED_PROVIDER, MergeRule


def _rule(**overrides: Any) -> MergeRule:
    fields: dict[str, Any] = {
        "instrument": "BTC-USDT",
        "kind": Kind.TICKER,
        "providers": {"binance", "okx"},
        "window": 0.05,
        "max_count": 4,
    }
    fields.update(overrides)
    return MergeRule(**fields)


def test_a_valid_rule_keeps_its_fields_and_freezes_the_providers() -> None:
    rule = _rule(providers=["okx", "binance", "okx"], name="btc-top")
    assert rule.providers == frozenset({"binance", "okx"})
    assert rule.key == ("BTC-USDT", Kind.TICKER)
    assert rule.provider == "btc-top"
    assert rule.describe() == "btc-top"


def test_an_unnamed_rule_emits_as_merged_and_describes_itself_by_key() -> None:
    rule = _rule(kind="book_snapshot")
    assert rule.kind is Kind.BOOK_SNAPSHOT
    assert rule.provider == MERGED_PROVIDER
    assert rule.describe() == "book_snapshot BTC-USDT"


def test_rules_are_values() -> None:
    assert _rule() == _rule(providers=("okx", "binance"))
    assert hash(_rule()) == hash(_rule())
    assert _rule() != _rule(window=0.1)


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"instrument": ""}, "instrument", "non-empty string"),
        ({"instrument": 7}, "instrument", "non-empty string"),
        ({"kind": Kind.TRADE}, "kind", "not trade"),
        ({"kind": "candle"}, "kind", "unknown event kind"),
        ({"providers": "binance"}, "providers", "collection of provider names"),
        ({"providers": 3}, "providers", "collection of provider names"),
        ({"providers": {"binance", ""}}, "providers", "non-empty strings"),
        ({"providers": {"binance", 1}}, "providers", "non-empty strings"),
        ({"providers": {"binance"}}, "providers", "at least 2 providers"),
        ({"window": 0}, "window", "> 0"),
        ({"window": -1.0}, "window", "> 0"),
        ({"window": float("inf")}, "window", "finite"),
        ({"window": float("nan")}, "window", "finite"),
        ({"window": True}, "window", "finite"),
        ({"window": "0.05"}, "window", "finite"),
        ({"max_count": 1}, "max_count", "at least the 2 expected providers"),
        ({"max_count": 2.0}, "max_count", "integer"),
        ({"max_count": True}, "max_count", "integer"),
        ({"name": ""}, "name", "non-empty string"),
    ],
)
def test_an_invalid_field_raises_a_config_error_naming_it(
    overrides: dict[str, Any], key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment) as caught:
        _rule(**overrides)
    assert caught.value.key == key
    assert isinstance(caught.value, ValueError)


def test_max_count_may_equal_the_number_of_providers() -> None:
    assert _rule(providers={"a", "b", "c"}, max_count=3).max_count == 3
