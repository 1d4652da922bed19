"""A worker's orders: from the consumer's context to the pipeline's control stream.

In a worker the consumer's :class:`~meltica_trio.consumers.ConsumerContext` is the
same class as in a pipeline; its control bus is a :class:`RemoteControl`, whose
``request_nowait`` queues the command for the forwarder task instead of an owner in
this process. The trading switch is checked by the context before that, as in a
pipeline; a full queue is refused the same way (``trio.WouldBlock``). The
forwarder appends each command to the control stream, retrying while Redis is
away: a command is never dropped once queued, and one resent after a lost reply
is recognised by its ``command_id`` on the pipeline side.
"""

from __future__ import annotations

import attrs
import trio

from meltica_trio.bus import ControlBus, ControlReply
from meltica_trio.bus._commands import Command

from ._link import Link
from ._streams import StreamNames
from ._wire import RemoteCommand, command_fields


@attrs.define(eq=False)
class RemoteControl(ControlBus):
    """The control bus of a remote consumer: its commands go to the control stream.

    Args:
        forward: the forwarder's queue (bounded; its size is the worker's
            ``command_capacity``).
    """

    _forward: trio.MemorySendChannel[RemoteCommand] = attrs.field(kw_only=True)

    def request_nowait(self, command: Command) -> None:
        """Queue an order command for the pipeline; its answers arrive in the lane.

        Raises:
            trio.WouldBlock: the queue is full (the context refuses the command).
            TypeError: a command a remote consumer may not send (only its orders).
        """
        if not isinstance(command, RemoteCommand):
            raise TypeError(f"a remote consumer cannot send {type(command).__name__}")
        self._forward.send_nowait(command)

    async def request(self, command: Command) -> ControlReply:
        """Not available remotely: answers arrive in the consumer's lane, not here.

        Raises:
            TypeError: always; use the context's ``submit_order`` and friends.
        """
        raise TypeError(
            "a remote consumer's answers arrive in its lane; send with the context's methods"
        )


@attrs.frozen(kw_only=True)
class ForwarderStatistics:
    """Commands appended to the control stream, and those queued now."""

    forwarded: int
    queued: int


@attrs.define(eq=False)
class Forwarder:
    """Appends a worker's queued commands to the control stream, in order."""

    link: Link
    names: StreamNames
    _receive: trio.MemoryReceiveChannel[RemoteCommand]
    _forwarded: int = attrs.field(init=False, default=0)

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Forward commands until cancelled or the queue is closed."""
        task_status.started()
        with self._receive:
            async for command in self._receive:
                await self._append(command)
                self._forwarded += 1

    async def _append(self, command: RemoteCommand) -> None:
        fields = command_fields(command)

        async def xadd() -> object:
            return await self.link.client.xadd(self.names.control, fields)

        await self.link.run(xadd, "xadd control")

    def statistics(self) -> ForwarderStatistics:
        """A snapshot of the counters."""
        queued = self._receive.statistics().current_buffer_used
        return ForwarderStatistics(forwarded=self._forwarded, queued=queued)
