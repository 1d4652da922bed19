"""One task that runs every sync consumer of a pipeline.

A sync consumer cannot yield inside its function, so a task of its own buys it no
concurrency; it only costs a task switch per wake-up. At low rates, where each
event arrives alone, that is one switch per subscriber per event: 50 subscribers at
2000 events/s is 100,000 switches a second, most of a core. The runner instead
drains every lane that has work in one wake-up. Isolation is unchanged: each
consumer keeps its own lane, delivery classes, DLQ entries and statistics, and a
slow sync function delays the trio thread whether or not it has its own task.
"""

from __future__ import annotations

import functools
import itertools
from collections import deque

import attrs
import trio

from meltica_trio.events import Event
from meltica_trio.lifecycle import Recycler

from ._runtime import ConsumerRuntime


@attrs.define(eq=False)
class SyncRunner:
    """Drains the lanes of attached sync consumers, one round per wake-up.

    Args:
        recycler: the one every attached consumer recycles through; a round's
            batches go back to it together when the round ends, however it ends.
    """

    recycler: Recycler
    _attached: set[ConsumerRuntime] = attrs.field(init=False, factory=set)
    _ready: deque[ConsumerRuntime] = attrs.field(init=False, factory=deque)
    _waiter: trio.lowlevel.Task | None = attrs.field(init=False, default=None)

    def attach(self, runtime: ConsumerRuntime) -> None:
        """Start running ``runtime`` (a sync consumer) whenever its lane has work."""
        if runtime.recycler is not self.recycler:
            raise ValueError(f"consumer {runtime.consumer_id!r} recycles elsewhere")
        self._attached.add(runtime)
        runtime.lane.notify_when_ready(functools.partial(self._mark_ready, runtime))

    def detach(self, runtime: ConsumerRuntime) -> None:
        """Stop running ``runtime``; what its lane still holds is the lane's to recycle."""
        self._attached.discard(runtime)

    def _mark_ready(self, runtime: ConsumerRuntime) -> None:
        self._ready.append(runtime)
        if self._waiter is not None:
            task, self._waiter = self._waiter, None
            trio.lowlevel.reschedule(task)

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run ready consumers until cancelled.

        Cancellation:
            Between rounds; a batch in progress (sync functions cannot be
            interrupted) finishes, and its events are recycled either way.
        """
        task_status.started()
        while True:
            if self._ready:
                await trio.lowlevel.checkpoint()  # one round, then let others run
            else:
                await self._wait_for_work()
            self._round()

    def _round(self) -> None:
        """Run every consumer ready now; recycle all their events in one go at the end.

        At low rates each lane holds one event, so recycling per lane would cost
        more than the consumer's call; the round's events come from one pool and
        go back as one run.
        """
        ready, attached = self._ready, self._attached
        taken: list[deque[Event]] = []
        try:
            for _ in range(len(ready)):
                runtime = ready.popleft()
                if runtime in attached:
                    batch = runtime.lane.take_nowait()
                    taken.append(batch)
                    runtime.run_events(batch)
        finally:
            self.recycler.recycle_all(itertools.chain.from_iterable(taken))

    async def _wait_for_work(self) -> None:
        self._waiter = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._waiter = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
