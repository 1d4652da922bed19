"""The windowed merge's counters, as :meth:`Merger.statistics` reports them."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class MergeStatistics:
    """Counters of the windowed merge.

    Every window opened is closed (by time or count), discarded, or still open;
    every closed window is emitted or suppressed::

        opened == closed_by_time + closed_by_count + discarded_on_restart
                  + discarded_on_reconfigure + drained + open_windows
        closed_by_time + closed_by_count == emitted + suppressed

    Attributes:
        rules: rules configured now.
        opened: windows opened.
        closed_by_time: windows closed because their time was up.
        closed_by_count: windows closed on reaching their rule's ``max_count``.
        emitted: merged events emitted (complete windows).
        suppressed: closed windows that missed an expected provider.
        fragments: fragment duplicates taken into windows.
        late: fragments dropped as late (see the module docstring).
        ignored: events of a rule's key not taken: unexpected provider or payload.
        pool_short: fragments not taken because the pool could not lend a duplicate.
        discarded_on_restart: open windows discarded by :meth:`Merger.restart`.
        discarded_on_reconfigure: open windows discarded because their rule was
            removed or replaced.
        drained: open windows discarded by :meth:`Merger.drain`.
        fragments_discarded: fragments recycled with a discarded or drained window.
        open_windows: windows open now.
        held: fragments held in open windows now.
        watermark_lag: seconds the oldest open window's opening is behind the
            ``now`` of the last ``offer`` or ``expire``; 0.0 with no open window.
    """

    rules: int
    opened: int
    closed_by_time: int
    closed_by_count: int
    emitted: int
    suppressed: int
    fragments: int
    late: int
    ignored: int
    pool_short: int
    discarded_on_restart: int
    discarded_on_reconfigure: int
    drained: int
    fragments_discarded: int
    open_windows: int
    held: int
    watermark_lag: float

    @property
    def closed(self) -> int:
        """Windows closed by time or count."""
        return self.closed_by_time + self.closed_by_count
