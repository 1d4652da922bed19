"""The routing commands: Subscribe, Unsubscribe, SubscribeMerged, StageRouting, FlipRouting.

Every routing change goes through staging and a flip, so every change makes one
new routing version: a plain Subscribe is a one-change stage flipped at once. On a
flip, each consumer whose route changed raises its minimum accepted version to the
new one, so market data routed to it under an older version (still queued in its
lane) is skipped and counted, while critical events are always delivered.
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
        if self.consumer(command.consumer_id) is None:
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
        if not self._stage(command):
            return Outcome(True, "unchanged", (("routing_version", str(self.routing.version)),))
        return self._flip()

    def _stage(self, command: Subscribe | Unsubscribe | SubscribeMerged) -> bool:
        """Stage the route ``command`` asks for; False when it would change nothing."""
        current = self.routing.subscription(command.consumer_id)
        if isinstance(command, Unsubscribe):
            if current is None:
                return False
            self.routing.stage(command.consumer_id, None)
            return True
        if isinstance(command, Subscribe):
            wanted = Subscription(
                consumer_id=command.consumer_id,
                instruments=command.instruments,
                kinds=command.kinds,
                providers=command.providers,
                merged=current.merged if current is not None else frozenset(),
            )
        else:
            base = current or Subscription(
                consumer_id=command.consumer_id, instruments=(), kinds=(), providers=()
            )
            wanted = attrs.evolve(base, merged=base.merged | {command.instrument})
        if wanted == current:
            return False
        consumer = self.consumer(command.consumer_id)
        assert consumer is not None  # check() said so
        self.routing.stage(command.consumer_id, (wanted, consumer.lane))
        return True

    def _flip(self) -> Outcome:
        version, affected = self.routing.flip()
        for consumer_id in affected:
            consumer = self.consumer(consumer_id)
            if consumer is not None:
                consumer.raise_min_version(version)
        detail = (("routing_version", str(version)), ("affected", ",".join(sorted(affected))))
        return Outcome(True, None, detail)
