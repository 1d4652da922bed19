"""Merge rules: which key to merge across which venues, over what window."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Final

import attrs

from meltica_trio._errors import ConfigError
from meltica_trio.events import Kind

MERGEABLE_KINDS: Final = frozenset({Kind.TICKER, Kind.BOOK_SNAPSHOT})
"""Fragment kinds a rule may merge: both carry one venue's top of book."""

MIN_PROVIDERS: Final = 2
"""Providers a rule must expect: merging one venue with itself is a copy, not a merge."""

MERGED_PROVIDER: Final = "merged"
"""The ``provider`` of a merged event whose rule has no name."""

RuleKey = tuple[str, Kind]
"""(instrument, fragment kind): the key a rule merges."""


def _kind(value: Kind | str) -> Kind:
    # A Kind or its wire name ("ticker"), so rules can come from TOML as they are.
    try:
        kind = Kind(value)
    except ValueError:
        raise ConfigError("kind", f"unknown event kind {value!r}") from None
    if kind not in MERGEABLE_KINDS:
        allowed = ", ".join(sorted(k.value for k in MERGEABLE_KINDS))
        raise ConfigError("kind", f"a merge rule merges {allowed}, not {kind.value}")
    return kind


def _providers(value: Iterable[str]) -> frozenset[str]:
    # frozenset("binance") would be a set of letters: refuse a lone string outright.
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError("providers", f"must be a collection of provider names, got {value!r}")
    providers = frozenset(value)
    for provider in providers:
        if not isinstance(provider, str) or not provider:
            raise ConfigError("providers", f"names must be non-empty strings, got {provider!r}")
    return providers


def _text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(attribute.name, f"must be a non-empty string, got {value!r}")


def _optional_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _text(instance, attribute, value)


def _enough_providers(_: object, attribute: attrs.Attribute[Any], value: frozenset[str]) -> None:
    if len(value) < MIN_PROVIDERS:
        raise ConfigError(
            attribute.name,
            f"a merge needs at least {MIN_PROVIDERS} providers, got {sorted(value)}",
        )


def _window(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(attribute.name, f"must be a finite number of seconds > 0, got {value!r}")


def _max_count(rule: MergeRule, attribute: attrs.Attribute[Any], value: object) -> None:
    # Validators run once every field is set, so the providers are known here.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(attribute.name, f"must be an integer, got {value!r}")
    if value < len(rule.providers):
        raise ConfigError(
            attribute.name,
            f"must be at least the {len(rule.providers)} expected providers, got {value}: "
            "a window closed by count before every venue could contribute is never complete",
        )


@attrs.frozen(kw_only=True)
class MergeRule:
    """Merge one key's fragments from several venues into one event per window.

    A window opens on the key's first fragment and closes ``window`` seconds later
    or on its ``max_count``-th fragment, whichever comes first (DESIGN.md section 5).

    Attributes:
        instrument: canonical ``BASE-QUOTE`` of the fragments.
        kind: the fragment kind, ``Kind.TICKER`` or ``Kind.BOOK_SNAPSHOT`` (or its
            wire name).
        providers: the venues expected in every window; a window that lacks any of
            them is suppressed. At least two.
        window: seconds on the trio clock from a window's first fragment to its close.
        max_count: fragments that close a window at once; at least ``len(providers)``.
        name: names the rule for :meth:`Merger.remove` and becomes the merged
            events' ``provider``; ``"merged"`` stands in when it is None.

    Raises:
        ConfigError: a field is invalid; ``err.key`` names it.
    """

    instrument: str = attrs.field(validator=_text)
    kind: Kind = attrs.field(converter=_kind)
    providers: frozenset[str] = attrs.field(converter=_providers, validator=_enough_providers)
    window: float = attrs.field(validator=_window)
    max_count: int = attrs.field(validator=_max_count)
    name: str | None = attrs.field(default=None, validator=_optional_text)

    @property
    def key(self) -> RuleKey:
        """The (instrument, kind) this rule merges."""
        return (self.instrument, self.kind)

    @property
    def provider(self) -> str:
        """The ``provider`` stamped on this rule's merged events."""
        return MERGED_PROVIDER if self.name is None else self.name

    def describe(self) -> str:
        """A short label for messages: the name, or the key."""
        return self.name or f"{self.kind.value} {self.instrument}"


def index_rules(rules: Iterable[MergeRule]) -> dict[RuleKey, MergeRule]:
    """The rules by key, refusing two for one key and any clash (see :func:`check_clash`)."""
    index: dict[RuleKey, MergeRule] = {}
    for rule in rules:
        if rule.key in index:
            raise ConfigError("rules", f"two rules for {rule.describe()}")
        check_clash(index.values(), rule)
        index[rule.key] = rule
    return index


def check_clash(others: Iterable[MergeRule], rule: MergeRule) -> None:
    """Refuse a rule whose name, or merged stream, another rule already has."""
    for other in others:
        if rule.name is not None and other.name == rule.name:
            raise ConfigError("name", f"rule name {rule.name!r} is taken by {other.describe()}")
        # One merged stream (provider, instrument, MERGED) per rule: downstream
        # ordering and latest-wins lanes would mix two rules' events in one.
        if (other.provider, other.instrument) == (rule.provider, rule.instrument):
            raise ConfigError(
                "name",
                f"{rule.describe()} and {other.describe()} would both emit merged events "
                f"as {rule.provider!r} for {rule.instrument}; give one of them a name",
            )
