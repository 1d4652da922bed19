"""Every default of meltica-trio in one place, each with its unit and the reason for it."""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 1
"""Version of the canonical event schema; bumped on any incompatible change."""

POOL_CAPACITY: Final = 4096
"""Objects a pool lends at once. Sized for lanes of 256 events x 16 subscribers."""

POOL_MAX_WAIT: Final = 0.010
"""Seconds ``EventPool.acquire`` waits for an object before applying the exhaustion policy.

Ten milliseconds is long enough to ride out a burst being drained by consumers and short
enough that a real leak surfaces at once instead of stalling the pipeline.
"""

LEASE_SITE_DEPTH: Final = 3
"""Stack frames recorded per acquire and recycle in debug mode (more costs more, says more)."""
