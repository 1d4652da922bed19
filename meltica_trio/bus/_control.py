"""The Control Bus: every command reaches its owner and is answered twice.

Commands queue on one bounded channel and are handled one at a time, in arrival
order, by the component registered as the owner of the command's type. Each is
answered first by a ControlAck (accepted, or refused with a reason, and the routing
version at that moment) and then by a ControlResult (the outcome).

Where the answers go follows who asked. A consumer asking from inside its function
(through its context, :meth:`ControlBus.request_nowait`) cannot wait for them, so
they arrive in its lane as CRITICAL events. A Python caller of
:meth:`ControlBus.request` gets them returned; its command may merely name a
consumer (subscribe ``"c1"`` to trades), and ``"c1"``'s function, which asked for
trades, should not start receiving control answers it never asked for.

A refused command changes nothing: owners check first (``check``) and act only on
commands they accepted (``apply``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, Protocol

import attrs
import trio

from meltica_trio._errors import PipelineClosedError
from meltica_trio.events import ControlAck, ControlResult

from ._commands import COMMAND_NAMES, Command

log = logging.getLogger(__name__)

CONTROL_CAPACITY: Final = 1024
"""Commands queued for the control task before ``request`` waits (``*_nowait`` refuses)."""


@attrs.frozen
class Outcome:
    """What an owner reports once it has carried a command out."""

    ok: bool
    reason: str | None = None
    detail: tuple[tuple[str, str], ...] = ()


class CommandOwner(Protocol):
    """The component that carries out one or more command types."""

    def check(self, command: Any) -> str | None:
        """Why the command is refused, or None to accept it. Must change nothing."""

    def apply(self, command: Any) -> Outcome:
        """Carry out an accepted command."""


@attrs.frozen
class ControlReply:
    """Both answers to one command."""

    ack: ControlAck
    result: ControlResult


@attrs.frozen(kw_only=True)
class ControlStatistics:
    """Commands received, accepted, refused, and failed inside their owner."""

    received: int
    accepted: int
    refused: int
    failed: int
    queued: int


@attrs.define(eq=False)
class _Pending:
    done: trio.Event = attrs.field(factory=trio.Event)
    reply: ControlReply | None = None


_TO_LANE: Final = None
"""The pending slot of a command whose answers go to the requester's lane."""


Deliver = Callable[[str, ControlAck | ControlResult], None]
"""Puts an answer in a consumer's lane (a no-op for ids without one); never blocks."""


@attrs.define(eq=False)
class ControlBus:
    """Routes commands to their owners and answers each one.

    Args:
        deliver: puts ControlAck/ControlResult events in the requester's lane.
        routing_version: the current routing version, quoted in every ack.
        capacity: commands queued before ``request`` waits.
    """

    deliver: Deliver
    routing_version: Callable[[], int]
    capacity: int = CONTROL_CAPACITY
    _owners: dict[type, CommandOwner] = attrs.field(init=False, factory=dict)
    _send: trio.MemorySendChannel[tuple[Command, _Pending | None]] = attrs.field(init=False)
    _receive: trio.MemoryReceiveChannel[tuple[Command, _Pending | None]] = attrs.field(init=False)
    _received: int = attrs.field(init=False, default=0)
    _accepted: int = attrs.field(init=False, default=0)
    _refused: int = attrs.field(init=False, default=0)
    _failed: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel(self.capacity)

    def register(self, command_type: type, owner: CommandOwner) -> None:
        """Make ``owner`` the one component that handles ``command_type``."""
        self._owners[command_type] = owner

    async def request(self, command: Command) -> ControlReply:
        """Send ``command`` and wait for both of its answers.

        Raises:
            PipelineClosedError: the bus closed before the command was handled.

        Cancellation:
            Cancelling the wait does not withdraw a command already queued; its
            answers still reach the requester's lane.
        """
        pending = _Pending()
        try:
            await self._send.send((command, pending))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise PipelineClosedError("the control bus is closed") from None
        await pending.done.wait()
        if pending.reply is None:
            raise PipelineClosedError("the pipeline closed before the command was handled")
        return pending.reply

    def request_nowait(self, command: Command) -> None:
        """Queue ``command`` without waiting; its answers arrive in the requester's lane.

        Raises:
            trio.WouldBlock: the control queue is full.
        """
        self._send.send_nowait((command, _TO_LANE))

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Handle commands until cancelled or the bus is closed."""
        task_status.started()
        with self._receive:
            try:
                async for command, pending in self._receive:
                    reply = self.handle(command, to_lane=pending is _TO_LANE)
                    if pending is not None:
                        pending.reply = reply
                        pending.done.set()
            finally:
                self._abandon_queued()

    def _abandon_queued(self) -> None:
        """On the way out, wake every caller whose command will never be handled.

        A caller outside the pipeline's nursery is not cancelled with it, and would
        otherwise wait for its answers forever.
        """
        while True:
            try:
                _, pending = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            if pending is not None:
                pending.done.set()  # with no reply: request() raises PipelineClosedError

    def close(self) -> None:
        """Take no more commands."""
        self._send.close()

    def handle(self, command: Command, *, to_lane: bool = False) -> ControlReply:
        """Check, ack, apply and answer one command (the control task's body).

        With ``to_lane`` the answers are also put in the requester's lane.
        """
        self._received += 1
        name = COMMAND_NAMES.get(type(command), type(command).__name__)
        command_id = str(getattr(command, "command_id", ""))
        reason = self._refusal(command)
        ack = ControlAck(
            command_id=command_id,
            command=name,
            accepted=reason is None,
            reason=reason,
            routing_version=self.routing_version(),
        )
        requester = str(getattr(command, "consumer_id", ""))
        if to_lane:
            self.deliver(requester, ack)
        if reason is not None:
            self._refused += 1
            outcome = Outcome(False, reason)
        else:
            self._accepted += 1
            outcome = self._apply(command)
        result = ControlResult(
            command_id=command_id,
            command=name,
            ok=outcome.ok,
            reason=outcome.reason,
            detail=outcome.detail,
        )
        if to_lane:
            self.deliver(requester, result)
        return ControlReply(ack, result)

    def _refusal(self, command: Command) -> str | None:
        owner = self._owners.get(type(command))
        if owner is None:
            if type(command) in COMMAND_NAMES:
                return f"no component handles {COMMAND_NAMES[type(command)]} in this pipeline"
            return f"{type(command).__name__} is not a control command"
        consumer_id = getattr(command, "consumer_id", None)
        if not isinstance(consumer_id, str) or not consumer_id:
            return "a command must name its consumer_id"
        try:
            return owner.check(command)
        except Exception as exc:
            log.exception("checking %s failed", type(command).__name__)
            return f"malformed command: {exc}"

    def _apply(self, command: Command) -> Outcome:
        try:
            return self._owners[type(command)].apply(command)
        except Exception as exc:
            # An owner's bug must not take the control plane down with it.
            self._failed += 1
            log.exception("applying %s failed", type(command).__name__)
            return Outcome(False, f"internal error: {type(exc).__name__}: {exc}")

    def statistics(self) -> ControlStatistics:
        """Counters of the control plane."""
        return ControlStatistics(
            received=self._received,
            accepted=self._accepted,
            refused=self._refused,
            failed=self._failed,
            queued=self._send.statistics().current_buffer_used,
        )
