"""The pipeline's end of the control stream: remote orders to the order gateway.

Workers append their consumers' SubmitOrder, CancelOrder and QueryOrder commands,
and their attachments, to the control stream. The bridge reads it through the
consumer group ``bridge``, one entry at a time, in order:

- an attachment subscribes the remote consumer in the pipeline (see
  :meth:`~meltica_trio.bridge.Bridge.attach`);
- a command from an attached group goes through ``pipe.control`` to its owner, the
  order gateway; its ControlAck and ControlResult go to the group's critical
  stream, where the worker's consumer finds them in its lane as it would in
  process, and the execution reports follow the same way;
- anything else (a malformed entry, or a command naming a consumer that is not an
  attached group) goes to the ``bridge`` dead-letter stream.

The entry is acknowledged only after the gateway took the command and both
answers are buffered for export, in one script with its apply mark. A bridge that
dies in between is replaced by one that meets the entry again; the mark says the
command was begun, so it is sent again, and the gateway, idempotent by
(consumer_id, client_order_id), answers a repeated SubmitOrder with the original
outcome and places nothing twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

import attrs
import trio
from coredis.response.types import StreamEntry

from meltica_trio._errors import DecodeError, PoolExhausted
from meltica_trio._pipeline import Pipeline
from meltica_trio.events import ControlAck, ControlResult, Event, Kind

from ._config import Attachment
from ._dead import add_dead_letter, malformed_entry
from ._defaults import POOL_MAX_WAIT
from ._exporter import Exporter
from ._gate import ApplyGate, Verdict
from ._group import GroupReader
from ._link import Link
from ._streams import StreamNames
from ._wire import RemoteCommand, decode_control, fields_of, id_of

log = logging.getLogger(__name__)

Attach = Callable[[Attachment], Awaitable[str | None]]
"""Subscribes a remote consumer; returns why it was refused, or None."""


@attrs.frozen(kw_only=True)
class ControlReaderStatistics:
    """Counters of the control stream's reader.

    Attributes:
        commands: remote commands handed to the pipeline's control bus.
        attachments: attachments handled (refused ones included).
        refused_attachments: attachments the pipeline refused (see the bridge DLQ).
        duplicates: entries whose command had been handled before (acknowledged only).
        malformed: entries that did not decode (sent to the DLQ).
        foreign: commands naming a consumer that is not an attached group (DLQ).
    """

    commands: int
    attachments: int
    refused_attachments: int
    duplicates: int
    malformed: int
    foreign: int


@attrs.define(eq=False)
class ControlReader:
    """Reads the control stream and carries out what it says (see the module docstring)."""

    pipe: Pipeline
    link: Link
    names: StreamNames
    reader: GroupReader
    gate: ApplyGate
    exporter: Exporter
    attach: Attach
    is_attached: Callable[[str], bool]
    read_count: int
    _counts: dict[str, int] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        fields = ControlReaderStatistics.__attrs_attrs__
        self._counts = {field.name: 0 for field in fields}

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Handle control entries until cancelled."""
        task_status.started()
        while True:
            for entry in await self.reader.read(self.read_count):
                await self._handle(entry)

    async def _handle(self, entry: StreamEntry) -> None:
        identifier, fields = id_of(entry), fields_of(entry)
        try:
            message = decode_control(fields)
        except DecodeError as exc:
            self._counts["malformed"] += 1
            log.warning("control entry %r is malformed: %s", identifier, exc)
            document = malformed_entry(self.reader.stream, identifier, fields, str(exc), "bridge")
            await self._dead_letter(identifier, document)
            return
        if isinstance(message, Attachment):
            await self._attach(identifier, message)
        else:
            await self._command(identifier, message)

    async def _attach(self, entry_id: bytes, attachment: Attachment) -> None:
        self._counts["attachments"] += 1
        refusal = await self.attach(attachment)
        if refusal is None:
            await self._ack(entry_id)
            return
        self._counts["refused_attachments"] += 1
        log.warning("attachment of %r refused: %s", attachment.group, refusal)
        document = {
            b"reason": b"attachment refused",
            b"group": attachment.group.encode(),
            b"error": refusal.encode(),
            b"entry": entry_id,
        }
        await self._dead_letter(entry_id, document)

    async def _command(self, entry_id: bytes, command: RemoteCommand) -> None:
        group = command.consumer_id
        if not self.is_attached(group):
            self._counts["foreign"] += 1
            log.warning("command from %r, which is not an attached remote consumer", group)
            document = {
                b"reason": b"not an attached remote consumer",
                b"consumer": group.encode(),
                b"command_id": command.command_id.encode(),
                b"entry": entry_id,
            }
            await self._dead_letter(entry_id, document)
            return
        apply = f"cmd:{command.command_id}"
        begin = functools.partial(self.gate.begin, [(entry_id, apply)])
        (verdict,) = await self.link.run(begin, "begin command")
        if verdict is not Verdict.APPLY:
            self._counts["duplicates"] += 1
            await self._ack(entry_id)
            return
        self._counts["commands"] += 1
        reply = await self.pipe.control.send(command)
        stream = self.names.critical(group)
        for kind, answer in ((Kind.CONTROL_ACK, reply.ack), (Kind.CONTROL_RESULT, reply.result)):
            event = await self._answer(kind, answer)
            try:
                await self.exporter.put_critical(
                    stream, event, apply=f"{kind}:{command.command_id}"
                )
            finally:
                self.pipe.recycler.recycle(event)
        await self._ack(entry_id, apply)

    async def _answer(self, kind: Kind, answer: ControlAck | ControlResult) -> Event:
        """A pipeline envelope for an answer (waiting, not failing, if the pool is empty)."""
        while True:
            try:
                event = self.pipe.new_event(kind=kind, provider="control", payload=answer)
            except PoolExhausted:
                await trio.sleep(POOL_MAX_WAIT)  # the entry waits in Redis meanwhile
                continue
            event.routing_version = self.pipe.routing.version
            return event

    async def _ack(self, entry_id: bytes, apply: str | None = None) -> None:
        async def ack() -> None:
            async with self.link.client.pipeline(transaction=False) as pipe:
                applied = [] if apply is None else [(entry_id, apply)]
                others = [entry_id] if apply is None else []
                self.gate.finish(pipe, self.reader.stream, applied, others)

        await self.link.run(ack, "xack control")

    async def _dead_letter(self, entry_id: bytes, document: dict[bytes, bytes]) -> None:
        async def dead_letter() -> None:
            async with self.link.client.pipeline(transaction=True) as multi:
                add_dead_letter(multi, self.names.dlq("bridge"), document)
                multi.xack(self.reader.stream, self.reader.group, [entry_id])

        await self.link.run(dead_letter, "dead letter")

    def statistics(self) -> ControlReaderStatistics:
        """A snapshot of the counters."""
        return ControlReaderStatistics(**self._counts)
