"""The consumers of one pipeline: each with its lane, runtime, context and task."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import attrs
import trio

from meltica_trio.bus import ControlBus, Lane, Outcome, SetTradingSwitch
from meltica_trio.events import Event
from meltica_trio.lifecycle import Recycler
from meltica_trio.telemetry import DeadLetterQueue

from ._context import ConsumerContext, Deliver
from ._runner import SyncRunner
from ._runtime import ConsumerRuntime, Handler


@attrs.define(eq=False)
class Consumer:
    """One registered consumer: its lane, runtime, context and task handles."""

    lane: Lane
    runtime: ConsumerRuntime
    context: ConsumerContext
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    finished: trio.Event = attrs.field(factory=trio.Event)

    @property
    def fn(self) -> Handler:
        """The consumer function."""
        return self.runtime.fn

    def raise_min_version(self, version: int) -> None:
        """Accept market data routed under ``version`` or later only (after a flip)."""
        self.runtime.min_version = max(self.runtime.min_version, version)


@attrs.define(eq=False)
class ConsumerRegistry:
    """Starts, finds and stops consumers, and owns the ``SetTradingSwitch`` command.

    Args:
        recycler: shared by every lane and runtime.
        dlq: where every runtime records failures.
        wall_clock: ns since the epoch.
        on_book_lost: told (provider, instrument) when a lane drops a book delta.
        on_start: told when a consumer starts on a sampled event (fan-out spread).
        control: the control bus consumers send orders through.
        deliver: puts control answers in a consumer's lane.
    """

    recycler: Recycler
    dlq: DeadLetterQueue
    wall_clock: Callable[[], int]
    on_book_lost: Callable[[str, str], None]
    on_start: Callable[[Event, int], None]
    control: ControlBus
    deliver: Deliver
    _consumers: dict[str, Consumer] = attrs.field(init=False, factory=dict)
    _runner: SyncRunner = attrs.field(init=False)
    _runner_started: bool = attrs.field(init=False, default=False)

    @_runner.default
    def _sync_runner(self) -> SyncRunner:
        return SyncRunner(self.recycler)

    def get(self, consumer_id: str) -> Consumer | None:
        """The consumer with this id, if registered."""
        return self._consumers.get(consumer_id)

    def __iter__(self) -> Iterator[Consumer]:
        return iter(list(self._consumers.values()))

    def __len__(self) -> int:
        return len(self._consumers)

    async def start(
        self, nursery: trio.Nursery, consumer_id: str, fn: Handler, lane_capacity: int
    ) -> Consumer:
        """Register a consumer and start running it in ``nursery``.

        An async consumer gets a task of its own; sync consumers share one runner
        task (see :mod:`meltica_trio.consumers._runner` for why).

        Cancellation:
            A start cancelled part-way leaves nothing registered.
        """
        lane = Lane(
            consumer_id,
            lane_capacity,
            self.recycler,
            on_book_lost=self.on_book_lost,
            wall_clock=self.wall_clock,
        )
        context = ConsumerContext(consumer_id, control=self.control, deliver=self.deliver)
        runtime = ConsumerRuntime(
            consumer_id,
            fn,
            lane,
            self.recycler,
            self.dlq,
            self.wall_clock,
            context=context,
            on_start=self.on_start,
        )
        consumer = Consumer(lane, runtime, context)
        self._consumers[consumer_id] = consumer
        try:
            if runtime.is_async:
                await nursery.start(self._run, consumer)
            else:
                if not self._runner_started:
                    await nursery.start(self._runner.serve)
                    self._runner_started = True
                self._runner.attach(runtime)
        except BaseException:
            self.stop(consumer_id, consumer, "its start was cancelled")
            raise
        return consumer

    async def _run(self, consumer: Consumer, *, task_status: trio.TaskStatus[None]) -> None:
        try:
            with consumer.scope:
                await consumer.runtime.serve(task_status=task_status)
        finally:
            consumer.finished.set()

    def stop(self, consumer_id: str, consumer: Consumer, reason: str) -> None:
        """Unregister ``consumer``, recycle its queue and cancel its task."""
        if self._consumers.get(consumer_id) is consumer:
            del self._consumers[consumer_id]
        consumer.lane.close()
        consumer.scope.cancel(reason=f"consumer {consumer_id}: {reason}")
        if not consumer.runtime.is_async:
            self._runner.detach(consumer.runtime)
            consumer.finished.set()  # no task of its own to wait for

    def close_all(self) -> None:
        """Shutdown, once every task has ended: recycle what the lanes still hold."""
        for consumer in self._consumers.values():
            consumer.lane.close()

    # -- the SetTradingSwitch command -------------------------------------------------

    def check(self, command: SetTradingSwitch) -> str | None:
        """Refuse a switch for an unknown consumer or a value that is not a bool."""
        if command.consumer_id not in self._consumers:
            return f"unknown consumer {command.consumer_id!r}"
        if not isinstance(command.enabled, bool):
            return f"enabled must be true or false, got {command.enabled!r}"
        return None

    def apply(self, command: SetTradingSwitch) -> Outcome:
        """Flip the switch; the consumer's next ``submit_order`` sees it."""
        self._consumers[command.consumer_id].context._switch_trading(command.enabled)
        state = "on" if command.enabled else "off"
        return Outcome(True, None, (("trading", state),))
