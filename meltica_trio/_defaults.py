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

# -- the pipeline ---------------------------------------------------------------

INTAKE_CAPACITY: Final = 4096
"""Events published but not yet taken by the dispatcher; ``publish`` waits beyond it."""

LANE_CAPACITY: Final = 1024
"""Non-critical events a subscriber's lane holds before dropping the oldest (~1 s at 1k/s)."""

DISPATCH_BATCH: Final = 256
"""Events the dispatcher takes from the intake per wake-up before yielding to others.

A burst can put a few batches in a lane before its consumer runs (trio's scheduler
order is random), so lanes should hold several: 256 keeps bursts inside the default
lane of 1024, at about 1% more work per delivery than 512 (2.5% for 128), measured
with callgrind on a 10-subscriber burst."""

REORDER_WINDOW: Final = 64
"""Events a stream holds while waiting for a sequence hole to fill."""

MAX_LATENESS: Final = 0.005
"""Seconds an event waits for a sequence hole to fill: longer than loopback jitter, far
shorter than a strategy's reaction time."""

STREAM_IDLE_TTL: Final = 300.0
"""Seconds without events after which a stream's ordering state is forgotten."""

LATENCY_EXACT_BATCH: Final = 16
"""Consumer batches up to this long time every event; longer ones sample (below)."""

LATENCY_SAMPLE_MASK: Final = 15
"""Under load one event in 16 (by event id) is timed; timing one costs as much as a small
handler, and 1/16 of a busy stream is still thousands of samples a second."""

SPREAD_SAMPLE_MASK: Final = 63
"""One event in 64 (by event id) is tracked for the first-to-last consumer start spread."""

SPREAD_TRACKED: Final = 1024
"""Sampled events tracked at once; the oldest is abandoned beyond this."""

IDLE_POLL: Final = 0.001
"""Seconds between checks in ``Pipeline.wait_idle`` (a test and benchmark helper)."""
