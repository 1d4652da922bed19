"""Fault knobs: make the venue misbehave on purpose, so clients' retries can be tested.

A :class:`FaultConfig` is a frozen value; :class:`Faults` holds the current one and can
be adjusted while the venue runs::

    venue.faults.update(rest_error_rate=0.5)      # half the REST calls fail with 5xx
    venue.faults.update(rest_delay=0.2)           # every REST call takes 200 ms longer
    venue.faults.update(rest_hang_rate=1.0)       # REST calls hang (client times out)
    venue.faults.update(rest_phase=FaultPhase.EITHER)  # ...before or after their effect
    venue.faults.update(ws_drop_every=100)        # each socket drops after 100 messages
    venue.faults.drop_connections()               # every open socket drops now

The dice are a ``random.Random`` seeded from the venue's seed, so a test sees the same
failures on every run (for the same sequence of requests).
"""

from __future__ import annotations

import enum
import random
from typing import Final

import attrs
import trio

__all__ = ["FaultConfig", "FaultPhase", "FaultStatistics", "Faults", "RestFault"]

REST_HANG: Final = 3600.0
"""Seconds a hung REST call waits before it answers: beyond any client's timeout."""


class FaultPhase(enum.Enum):
    """When a REST fault strikes relative to the request's effect."""

    BEFORE = "before"
    """Nothing happened at the venue (a clean failure)."""
    AFTER = "after"
    """The request took effect but its answer is lost (outcome unknown to the client)."""
    EITHER = "either"
    """Each fault strikes before or after, at even odds (the seeded dice decide)."""


@attrs.frozen(kw_only=True)
class FaultConfig:
    """The fault knobs (all off by default).

    Attributes:
        rest_delay: seconds added to every REST call.
        rest_error_rate: fraction of REST calls answered ``503`` with Binance's -1001.
        rest_hang_rate: fraction of REST calls that hang for ``rest_hang`` seconds.
        rest_hang: how long a hung call waits before it answers.
        rest_phase: whether errors and hangs strike before or after the call's effect
            (or, with ``EITHER``, each one at random).
        rest_paths: paths the REST faults apply to (``None``: every ``/api`` path).
        ws_drop_every: drop each WebSocket after this many messages (``None``: never).
    """

    rest_delay: float = 0.0
    rest_error_rate: float = 0.0
    rest_hang_rate: float = 0.0
    rest_hang: float = REST_HANG
    rest_phase: FaultPhase = FaultPhase.BEFORE
    rest_paths: frozenset[str] | None = None
    ws_drop_every: int | None = None


@attrs.frozen(kw_only=True)
class FaultStatistics:
    """Faults injected so far.

    Attributes:
        rest_errors: REST calls answered 503.
        rest_hangs: REST calls that hung.
        rest_after: errors and hangs that struck after the call took effect.
        rest_delayed: REST calls slowed by ``rest_delay``.
        ws_drops: WebSockets dropped on purpose.
    """

    rest_errors: int
    rest_hangs: int
    rest_after: int
    rest_delayed: int
    ws_drops: int


class RestFault(enum.Enum):
    """What the dice chose for one REST call."""

    NONE = "none"
    ERROR = "error"
    HANG = "hang"


@attrs.define(eq=False)
class Faults:
    """The venue's current fault knobs, adjustable at runtime.

    Args:
        config: the knobs to start with.
        seed: seeds the dice that pick which calls fail.
    """

    config: FaultConfig = attrs.field(factory=FaultConfig)
    seed: int = 0
    _rng: random.Random = attrs.field(init=False)
    _drop: trio.Event = attrs.field(init=False, factory=trio.Event)
    _counts: dict[str, int] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def update(self, **changes: object) -> FaultConfig:
        """Change some knobs (names as in :class:`FaultConfig`); returns the new config."""
        self.config = attrs.evolve(self.config, **changes)  # type: ignore[arg-type]
        return self.config

    def reset(self) -> None:
        """Turn every fault off."""
        self.config = FaultConfig()

    def drop_connections(self) -> None:
        """Drop every WebSocket connection open now (new ones are unaffected)."""
        self._drop.set()
        self._drop = trio.Event()

    def drop_signal(self) -> trio.Event:
        """The event the next :meth:`drop_connections` sets (for connection handlers)."""
        return self._drop

    def roll_rest(self, path: str) -> tuple[RestFault, FaultPhase]:
        """Pick the fault for one REST call to ``path`` and when it strikes (counted).

        The phase is ``BEFORE`` or ``AFTER``, never ``EITHER``.
        """
        config = self.config
        if config.rest_paths is not None and path not in config.rest_paths:
            return RestFault.NONE, FaultPhase.BEFORE
        if config.rest_delay > 0:
            self._count("rest_delayed")
        if config.rest_error_rate > 0 and self._rng.random() < config.rest_error_rate:
            self._count("rest_errors")
            return RestFault.ERROR, self._phase()
        if config.rest_hang_rate > 0 and self._rng.random() < config.rest_hang_rate:
            self._count("rest_hangs")
            return RestFault.HANG, self._phase()
        return RestFault.NONE, FaultPhase.BEFORE

    def _phase(self) -> FaultPhase:
        phase = self.config.rest_phase
        if phase is FaultPhase.EITHER:
            phase = FaultPhase.AFTER if self._rng.random() < 0.5 else FaultPhase.BEFORE
        if phase is FaultPhase.AFTER:
            self._count("rest_after")
        return phase

    def applies_to(self, path: str) -> bool:
        """True when the REST knobs cover ``path``."""
        paths = self.config.rest_paths
        return paths is None or path in paths

    def note_ws_drop(self) -> None:
        """Count one WebSocket dropped on purpose."""
        self._count("ws_drops")

    def statistics(self) -> FaultStatistics:
        """Faults injected so far."""
        c = self._counts
        return FaultStatistics(
            rest_errors=c.get("rest_errors", 0),
            rest_hangs=c.get("rest_hangs", 0),
            rest_after=c.get("rest_after", 0),
            rest_delayed=c.get("rest_delayed", 0),
            ws_drops=c.get("ws_drops", 0),
        )

    def _count(self, name: str) -> None:
        self._counts[name] = self._counts.get(name, 0) + 1
