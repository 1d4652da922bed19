"""Fan-out metrics: subscribers per event, intake to last lane, first-to-last start spread."""

from __future__ import annotations

import attrs

from meltica_trio._defaults import SPREAD_TRACKED
from meltica_trio.events import Event
from meltica_trio.telemetry import LatencyHistogram, LatencySummary


@attrs.frozen(kw_only=True)
class FanoutStatistics:
    """Fan-out counters.

    Attributes:
        events: events routed.
        deliveries: envelopes put in lanes (originals and duplicates).
        unrouted: events no subscriber wanted (recycled at once).
        max_subscribers: the widest fan-out seen.
        to_last_lane: wall time from ingest to the last lane, per event.
        start_spread: wall time between the first and last consumer starting on the
            same event (sampled).
    """

    events: int
    deliveries: int
    unrouted: int
    max_subscribers: int
    to_last_lane: LatencySummary
    start_spread: LatencySummary


@attrs.define(eq=False)
class SpreadTracker:
    """Follows sampled events until every subscriber has started on them."""

    _pending: dict[int, list[int]] = attrs.field(init=False, factory=dict)
    histogram: LatencyHistogram = attrs.field(init=False, factory=LatencyHistogram)

    def expect(self, event_id: int, subscribers: int) -> None:
        """A sampled event goes to ``subscribers`` consumers."""
        if len(self._pending) >= SPREAD_TRACKED:
            del self._pending[next(iter(self._pending))]
        self._pending[event_id] = [subscribers, 0, 0]

    def started(self, event: Event, wall_ns: int) -> None:
        """A consumer started on a sampled event at ``wall_ns``."""
        entry = self._pending.get(event.event_id)
        if entry is None:
            return
        remaining, first, _ = entry
        entry[0] = remaining - 1
        entry[1] = first or wall_ns
        entry[2] = wall_ns
        if remaining == 1:
            del self._pending[event.event_id]
            self.histogram.record(wall_ns - entry[1])
