"""The routing table: which subscribers' lanes get which events."""

from __future__ import annotations

from typing import Final

import attrs

from meltica_trio.bus import Lane
from meltica_trio.bus._commands import frozen_or_all, frozen_strings, kinds_or_all
from meltica_trio.events import Kind

_MERGED: Final = Kind.MERGED


@attrs.frozen(kw_only=True)
class Subscription:
    """What one consumer receives; ``None`` in a field means every value.

    Attributes:
        consumer_id: the subscriber.
        instruments: canonical instruments (``"BTC-USDT"``), or None for all.
        kinds: event kinds, or None for all.
        providers: provider names, or None for all.
        merged: instruments whose merged (cross-venue) view the consumer also gets,
            whatever the filters above say.
    """

    consumer_id: str
    instruments: frozenset[str] | None = attrs.field(default=None, converter=frozen_or_all)
    kinds: frozenset[Kind] | None = attrs.field(default=None, converter=kinds_or_all)
    providers: frozenset[str] | None = attrs.field(default=None, converter=frozen_or_all)
    merged: frozenset[str] = attrs.field(default=frozenset(), converter=frozen_strings)

    def matches(self, provider: str, instrument: str, kind: Kind) -> bool:
        """Whether an event with these coordinates is for this subscriber."""
        if kind is _MERGED and instrument in self.merged:
            return True
        return (
            (self.kinds is None or kind in self.kinds)
            and (self.instruments is None or instrument in self.instruments)
            and (self.providers is None or provider in self.providers)
        )


@attrs.define(eq=False)
class RoutingTable:
    """Subscriptions and the lanes they feed, with a version bumped on every change.

    Lookups go through a cache keyed by (provider, instrument, kind), filled on the
    first event of each key and cleared on every change, so routing an event is one
    dict hit however many subscriptions there are.
    """

    _routes: dict[str, tuple[Subscription, Lane]] = attrs.field(init=False, factory=dict)
    _cache: dict[tuple[str, str, Kind], tuple[Lane, ...]] = attrs.field(init=False, factory=dict)
    _staged: dict[str, tuple[Subscription, Lane] | None] = attrs.field(init=False, factory=dict)
    version: int = attrs.field(init=False, default=1)

    def set(self, subscription: Subscription, lane: Lane) -> int:
        """Add or replace a consumer's subscription; returns the new version."""
        self._routes[subscription.consumer_id] = (subscription, lane)
        return self._changed()

    def remove(self, consumer_id: str) -> int:
        """Remove a consumer's subscription; returns the new version.

        Raises:
            KeyError: the consumer has no subscription.
        """
        del self._routes[consumer_id]
        return self._changed()

    def _changed(self) -> int:
        self._cache.clear()
        self.version += 1
        return self.version

    def stage(self, consumer_id: str, route: tuple[Subscription, Lane] | None) -> None:
        """Stage a change (``None`` removes the consumer) for the next :meth:`flip`.

        Staged changes accumulate until the flip; a later change to the same
        consumer replaces an earlier one.
        """
        self._staged[consumer_id] = route

    def unstage(self, consumer_id: str) -> None:
        """Withdraw the consumer's staged change, if any (the flip leaves it as it is)."""
        self._staged.pop(consumer_id, None)

    @property
    def staged(self) -> int:
        """How many consumers the next flip changes."""
        return len(self._staged)

    def staged_consumers(self) -> frozenset[str]:
        """The consumers the next flip changes."""
        return frozenset(self._staged)

    def flip(self) -> tuple[int, frozenset[str]]:
        """Apply every staged change at once as one new version.

        Returns:
            The new version and the consumers whose routes changed.
        """
        for consumer_id, route in self._staged.items():
            if route is None:
                self._routes.pop(consumer_id, None)
            else:
                self._routes[consumer_id] = route
        affected = frozenset(self._staged)
        self._staged.clear()
        return self._changed(), affected

    def lanes_for(self, provider: str, instrument: str, kind: Kind) -> tuple[Lane, ...]:
        """The lanes an event with these coordinates goes to (cached)."""
        key = (provider, instrument, kind)
        lanes = self._cache.get(key)
        if lanes is None:
            lanes = self._cache[key] = tuple(
                lane
                for subscription, lane in self._routes.values()
                if subscription.matches(provider, instrument, kind)
            )
        return lanes

    def subscription(self, consumer_id: str) -> Subscription | None:
        """The consumer's current subscription, if any."""
        route = self._routes.get(consumer_id)
        return route[0] if route else None

    def __len__(self) -> int:
        return len(self._routes)
