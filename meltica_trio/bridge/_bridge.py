"""``open_bridge``: a running pipeline's Data Bus and Control Bus, extended over Redis."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Final

import attrs
import orjson
import trio

from meltica_trio._errors import CommandRefusedError, ConsumerExistsError, PipelineClosedError
from meltica_trio._pipeline import Pipeline
from meltica_trio.consumers import Handler

from ._config import Attachment, BridgeConfig
from ._control import ControlReader, ControlReaderStatistics
from ._defaults import BRIDGE_GROUP, MARKET_CONSUMER
from ._exporter import Exporter, ExporterStatistics
from ._gate import ApplyGate
from ._group import GroupReader, GroupStatistics, ensure_group
from ._link import Link, LinkStatistics, open_link
from ._streams import StreamNames
from ._trim import Trimmer, TrimStatistics
from ._wire import attachment_json, parse_attachment

log = logging.getLogger(__name__)

FLUSH_TIMEOUT: Final = 2.0
"""Seconds a closing bridge waits for its buffered critical entries to reach Redis."""


@attrs.frozen(kw_only=True)
class BridgeStatistics:
    """A snapshot of a bridge.

    Attributes:
        link: the Redis connection's health.
        exporter: buffers, writes and drops of exported traffic.
        control: what the control stream brought.
        control_group: how control entries were read (new, recovered, claimed).
        trim: trims of acknowledged entries.
        remotes: the attached remote consumers (their groups), sorted.
    """

    link: LinkStatistics
    exporter: ExporterStatistics
    control: ControlReaderStatistics
    control_group: GroupStatistics
    trim: TrimStatistics
    remotes: tuple[str, ...]


@attrs.define(eq=False)
class Bridge:
    """A pipeline bridged to Redis; get one from :func:`open_bridge`.

    Attributes:
        pipe: the pipeline.
        config: the bridge's settings.
        names: the Redis key names.
    """

    pipe: Pipeline
    config: BridgeConfig
    names: StreamNames
    _link: Link
    _exporter: Exporter
    _handlers: dict[str, Handler] = attrs.field(init=False, factory=dict)
    _attached: dict[str, Attachment] = attrs.field(init=False, factory=dict)
    _ready: dict[str, trio.Event] = attrs.field(init=False, factory=dict)
    _control: ControlReader | None = attrs.field(init=False, default=None)
    _control_group: GroupReader | None = attrs.field(init=False, default=None)
    _trimmer: Trimmer | None = attrs.field(init=False, default=None)

    # -- remote consumers ---------------------------------------------------------------

    async def attach(self, attachment: Attachment) -> str | None:
        """Subscribe a remote consumer in the pipeline; returns why not, or None.

        The pipeline consumer ``attachment.group`` then exports its critical
        events (those its filters route, and its own execution reports and control
        answers) to the group's critical stream, whose consumer group is made here
        if no worker made it first. Attaching again replaces the filters. The
        attachment is kept in Redis, so a restarted bridge attaches it again.
        """
        group = attachment.group
        handler = self._handlers.setdefault(group, self._exporter.critical_handler(group))
        try:
            await self.pipe.subscribe(
                group,
                handler,
                instruments=attachment.instruments,
                kinds=attachment.critical_kinds,
                providers=attachment.providers,
            )
        except (CommandRefusedError, ConsumerExistsError, PipelineClosedError) as exc:
            return str(exc)
        await ensure_group(self._link, self.names.critical(group), group)
        body = attachment_json(attachment)
        await self._link.run(
            lambda: self._link.client.hset(self.names.remotes, {group: body}), "hset"
        )
        self._attached[group] = attachment
        self._ready.setdefault(group, trio.Event()).set()
        return None

    def is_attached(self, group: str) -> bool:
        """Whether ``group`` is an attached remote consumer."""
        return group in self._attached

    async def wait_attached(self, group: str) -> None:
        """Wait until the remote consumer ``group`` is attached."""
        await self._ready.setdefault(group, trio.Event()).wait()

    async def _attach_known(self) -> None:
        """Attach the configured remotes and those attached to earlier runs."""
        stored = await self._link.run(
            lambda: self._link.client.hgetall(self.names.remotes), "hgetall"
        )
        remotes = {a.group: a for a in self.config.remotes}
        for group, body in sorted(stored.items()):
            try:
                attachment = parse_attachment(_json(body))
            except ValueError as exc:
                log.warning("stored attachment %r is unreadable: %s", group, exc)
                continue
            remotes.setdefault(attachment.group, attachment)
        for attachment in remotes.values():
            refusal = await self.attach(attachment)
            if refusal is not None:
                log.warning("remote consumer %r not attached: %s", attachment.group, refusal)

    def _group_streams(self) -> Iterator[str]:
        yield self.names.control
        for group in list(self._attached):
            yield self.names.critical(group)

    # -- running ------------------------------------------------------------------------

    async def _serve_control(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Attach known remotes, then read the control stream (all retried while Redis is away)."""
        assert self._control is not None
        task_status.started()
        await self._attach_known()
        await ensure_group(self._link, self.names.control, BRIDGE_GROUP)
        await self._control.serve()

    async def _stop_exporting(self) -> None:
        """Unsubscribe the exporter's consumers (the pipeline may already be closed)."""
        for consumer_id in (MARKET_CONSUMER, *self._handlers):
            with contextlib.suppress(KeyError, PipelineClosedError):
                await self.pipe.unsubscribe(consumer_id)

    def statistics(self) -> BridgeStatistics:
        """A snapshot of every part of the bridge."""
        assert self._control is not None
        assert self._trimmer is not None
        assert self._control_group is not None
        return BridgeStatistics(
            link=self._link.statistics(),
            exporter=self._exporter.statistics(),
            control=self._control.statistics(),
            control_group=self._control_group.statistics(),
            trim=self._trimmer.statistics(),
            remotes=tuple(sorted(self._attached)),
        )


def _json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from exc


def _assemble(pipe: Pipeline, config: BridgeConfig, link: Link) -> Bridge:
    """The bridge's parts, wired; nothing runs yet."""
    names = StreamNames(config.prefix)
    exporter = Exporter(
        link,
        names,
        uuid.uuid4().hex[:12],
        critical_capacity=config.critical_capacity,
        market_capacity=config.market_capacity,
        write_batch=config.write_batch,
        market_maxlen=config.market_maxlen,
    )
    bridge = Bridge(pipe, config, names, link, exporter)
    reader = GroupReader(
        link,
        names.control,
        BRIDGE_GROUP,
        config.name,
        block=config.read_block,
        claim_idle=config.claim_idle,
    )
    gate = ApplyGate(link.client, names, BRIDGE_GROUP, config.name, config.applied_ttl)
    bridge._control_group = reader
    bridge._control = ControlReader(
        pipe,
        link,
        names,
        reader,
        gate,
        exporter,
        bridge.attach,
        bridge.is_attached,
        config.read_count,
    )
    bridge._trimmer = Trimmer(link, bridge._group_streams, config.trim_interval)
    return bridge


@asynccontextmanager
async def open_bridge(pipe: Pipeline, config: BridgeConfig | None = None) -> AsyncIterator[Bridge]:
    """Bridge ``pipe`` to Redis for the duration of the ``async with`` block.

    Nest it inside the pipeline's block. On entry the market data exporter is
    subscribed at once; the rest (remote consumers attached before, the control
    stream) starts in the background and waits for Redis if it is not up yet.
    Leaving the block unsubscribes the exporting consumers, gives buffered
    critical entries :data:`FLUSH_TIMEOUT` seconds to reach Redis, and stops.
    """
    config = config or BridgeConfig()
    async with open_link(config.url, config.backoff) as link:
        bridge = _assemble(pipe, config, link)
        exporter, trimmer = bridge._exporter, bridge._trimmer
        assert trimmer is not None
        async with trio.open_nursery() as nursery:
            await nursery.start(exporter.serve)
            try:
                if config.market is not None:
                    market = config.market
                    await pipe.subscribe(
                        MARKET_CONSUMER,
                        exporter.market_handler(),
                        instruments=market.instruments,
                        kinds=market.market_kinds,
                        providers=market.providers,
                    )
                await nursery.start(bridge._serve_control)
                await nursery.start(trimmer.serve)
                yield bridge
            finally:
                with trio.move_on_after(FLUSH_TIMEOUT, shield=True):
                    await bridge._stop_exporting()
                    await exporter.wait_flushed()
                nursery.cancel_scope.cancel(reason="the bridge's block ended")
