"""The routing commands: Subscribe, Unsubscribe, SubscribeMerged, StageRouting, FlipRouting.

Every routing change makes one new routing version: ``StageRouting`` collects
changes that one ``FlipRouting`` makes current at once, and a plain Subscribe,
Unsubscribe or SubscribeMerged is a one-change flip of its own that leaves what
others staged staged. On every change, each consumer whose route changed raises its
minimum accepted version to the new one, so market data routed to it under an older
version (still queued in its lane) is skipped and counted, while critical events are
always delivered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

import attrs

from meltica_trio.bus import (
    FlipRouting,
    Lane,
    Outcome,
    StageRouting,
    Subscribe,
    SubscribeMerged,
    Unsubscribe,
    instrument_problem,
)

from ._routing import RoutingTable, Subscription

RoutingCommand = Subscribe | Unsubscribe | SubscribeMerged | StageRouting | FlipRouting


class RoutedConsumer(Protocol):
    """What routing needs of a registered consumer."""

    @property
    def lane(self) -> Lane: ...

    def raise_min_version(self, version: int) -> None: ...


@attrs.define(eq=False)
class RoutingControl:
    """Owns the routing commands of one pipeline.

    Args:
        routing: the routing table it changes.
        consumer: finds a registered consumer by id.
        instruments: the instruments subscriptions may name, or None for any.
        merged_rule: why no merged view of (instrument, rule name) exists, or None.
    """

    routing: RoutingTable
    consumer: Callable[[str], RoutedConsumer | None]
    instruments: Callable[[], frozenset[str] | None]
    merged_rule: Callable[[str, str | None], str | None]

    # -- checking (changes nothing) ---------------------------------------------------

    def check(self, command: RoutingCommand) -> str | None:
        """Why ``command`` is refused, or None."""
        if isinstance(command, StageRouting):
            return self._check_stage(command.changes)
        if isinstance(command, FlipRouting):
            return None if self.routing.staged else "nothing is staged to flip"
        if self.consumer(command.consumer_id) is None and not (
            # A consumer stopped while a Subscribe of its own was in flight may be
            # left with a route; only an Unsubscribe can clear it.
            isinstance(command, Unsubscribe) and self.routing.subscription(command.consumer_id)
        ):
            return f"unknown consumer {command.consumer_id!r}"
        if isinstance(command, Subscribe):
            return self._check_instruments(command.instruments)
        if isinstance(command, SubscribeMerged):
            return instrument_problem(command.instrument) or self.merged_rule(
                command.instrument, command.rule
            )
        return None

    def _check_stage(self, changes: object) -> str | None:
        if not isinstance(changes, tuple) or not changes:
            return "stage_routing needs a non-empty tuple of Subscribe/Unsubscribe changes"
        for change in changes:
            if not isinstance(change, Subscribe | Unsubscribe):
                return f"{type(change).__name__} cannot be staged"
            problem = self.check(change)
            if problem is not None:
                return f"change for {change.consumer_id!r}: {problem}"
        return None

    def _check_instruments(self, instruments: Iterable[str] | None) -> str | None:
        if instruments is None:
            return None
        universe = self.instruments()
        for instrument in sorted(instruments):
            problem = instrument_problem(instrument)
            if problem is not None:
                return problem
            if universe is not None and instrument not in universe:
                return f"unknown instrument {instrument!r}"
        return None

    # -- applying ---------------------------------------------------------------------

    def apply(self, command: RoutingCommand) -> Outcome:
        """Carry out an accepted routing command."""
        if isinstance(command, FlipRouting):
            return self._flip()
        if isinstance(command, StageRouting):
            for change in command.changes:
                self._stage(change)
            return Outcome(True, None, (("staged", str(self.routing.staged)),))
        consumer_id = command.consumer_id
        wanted = self._wanted(command)
        if wanted == self.routing.subscription(consumer_id):
            return Outcome(True, "unchanged", (("routing_version", str(self.routing.version)),))
        # A one-change flip of its own: what others staged stays staged for their flip.
        if wanted is None:
            version = self.routing.remove(consumer_id)
        else:
            version = self.routing.set(wanted, self._lane(consumer_id))
        return self._changed(version, frozenset((consumer_id,)))

    def _stage(self, change: Subscribe | Unsubscribe) -> None:
        """Stage ``change``; it replaces the consumer's earlier staged change."""
        wanted = self._wanted(change)
        if wanted == self.routing.subscription(change.consumer_id):
            self.routing.unstage(change.consumer_id)  # back to what is current: no change
        elif wanted is None:
            self.routing.stage(change.consumer_id, None)
        else:
            self.routing.stage(change.consumer_id, (wanted, self._lane(change.consumer_id)))

    def _wanted(self, command: Subscribe | Unsubscribe | SubscribeMerged) -> Subscription | None:
        """The subscription ``command`` asks for; None for no route at all."""
        current = self.routing.subscription(command.consumer_id)
        if isinstance(command, Unsubscribe):
            return None
        if isinstance(command, Subscribe):
            return Subscription(
                consumer_id=command.consumer_id,
                instruments=command.instruments,
                kinds=command.kinds,
                providers=command.providers,
                merged=current.merged if current is not None else frozenset(),
            )
        base = current or Subscription(
            consumer_id=command.consumer_id, instruments=(), kinds=(), providers=()
        )
        return attrs.evolve(base, merged=base.merged | {command.instrument})

    def _lane(self, consumer_id: str) -> Lane:
        consumer = self.consumer(consumer_id)
        assert consumer is not None  # check() said so
        return consumer.lane

    def _flip(self) -> Outcome:
        # A consumer stopped since its change was staged must not get a route back.
        for consumer_id in self.routing.staged_consumers():
            if self.consumer(consumer_id) is None:
                self.routing.stage(consumer_id, None)
        return self._changed(*self.routing.flip())

    def _changed(self, version: int, affected: frozenset[str]) -> Outcome:
        for consumer_id in affected:
            consumer = self.consumer(consumer_id)
            if consumer is not None:
                consumer.raise_min_version(version)
        detail = (("routing_version", str(version)), ("affected", ",".join(sorted(affected))))
        return Outcome(True, None, detail)
