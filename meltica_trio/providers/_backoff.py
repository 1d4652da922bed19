"""Capped exponential backoff with jitter, for reconnects and snapshot retries (sans-I/O)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import attrs

RECONNECT_INITIAL: Final = 0.5
"""Seconds before the first reconnect: quick enough to hide a blip, slow enough not to
hammer a venue that just dropped us."""

RECONNECT_MAX: Final = 30.0
"""Seconds the backoff grows to at most: a venue outage is noticed within half a minute
of its end, at two attempts a minute per connection."""

RECONNECT_MULTIPLIER: Final = 2.0
"""Growth of the delay per consecutive failure."""

RECONNECT_JITTER: Final = 0.5
"""Fraction of each delay that is random (delay is in ``[(1 - jitter) * d, d]``), so
many connections dropped together do not return together."""

_MAX_EXPONENT: Final = 64  # 2.0 ** 64 already exceeds any cap; larger would overflow


@attrs.frozen(kw_only=True)
class Backoff:
    """Delays between attempts: ``min(maximum, initial * multiplier ** (n - 1))``, jittered.

    Attributes:
        initial: seconds before the first retry.
        maximum: the cap in seconds.
        multiplier: growth per consecutive failure.
        jitter: fraction of each delay drawn at random (0: none, 1: full jitter).
        max_attempts: consecutive failures before giving up, or ``None`` for never.
    """

    initial: float = RECONNECT_INITIAL
    maximum: float = RECONNECT_MAX
    multiplier: float = RECONNECT_MULTIPLIER
    jitter: float = attrs.field(default=RECONNECT_JITTER)
    max_attempts: int | None = None

    @jitter.validator
    def _check_jitter(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"jitter must be within [0, 1], got {value}")

    def delay(self, attempt: int, random: Callable[[], float]) -> float:
        """Seconds to wait after the ``attempt``-th consecutive failure (from 1).

        Args:
            attempt: failures so far, 1 for the first.
            random: a uniform draw in ``[0, 1)``, e.g. ``random.Random(seed).random``.
        """
        exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
        base = min(self.maximum, self.initial * self.multiplier**exponent)
        return base * (1.0 - self.jitter * random())

    def gives_up(self, attempt: int) -> bool:
        """True when ``attempt`` consecutive failures reach ``max_attempts``."""
        return self.max_attempts is not None and attempt >= self.max_attempts
