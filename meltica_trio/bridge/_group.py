"""Reading a stream as one consumer of a consumer group, taking over from dead ones.

A reader gets, in this order of preference:

1. on start, the entries its own name still has pending (a restart under the
   same name finishes what it had begun, at once);
2. every ``claim_idle / 2`` seconds, entries that any consumer of the group has
   left pending for ``claim_idle`` seconds (XAUTOCLAIM, going on at once while it
   finds some): their owner died or is cut off, since a live owner keeps its
   entries fresh (:meth:`GroupReader.touch`);
3. otherwise new entries (XREADGROUP ``>``), blocking up to ``block`` seconds.

Entries are acknowledged by the caller, in the same script as whatever marks them
applied.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Final

import attrs
import coredis.exceptions
import trio
from coredis.response.types import StreamEntry, StreamPendingExt

from ._link import Link

_START: Final = b"0-0"


async def ensure_group(link: Link, stream: str, group: str) -> None:
    """Create ``group`` on ``stream`` (and the stream) reading from its very first entry.

    Either side may come first: created from ``0``, the group gets every entry
    written before it existed; a group that exists already is left as it is.
    """

    async def create() -> None:
        with contextlib.suppress(coredis.exceptions.StreamDuplicateConsumerGroupError):
            await link.client.xgroup_create(stream, group, identifier="0", mkstream=True)

    await link.run(create, f"xgroup create {stream}")


@attrs.frozen(kw_only=True)
class GroupStatistics:
    """Entries read new, recovered from this consumer's own past, and claimed from others."""

    read: int
    recovered: int
    claimed: int


@attrs.define(eq=False)
class GroupReader:
    """One consumer of one group on one stream.

    Args:
        link: the Redis link.
        stream: the stream read.
        group: the consumer group.
        consumer: this reader's name in the group.
        block: seconds a read waits for new entries.
        claim_idle: seconds of silence after which another consumer's entries are taken.
    """

    link: Link
    stream: str
    group: str
    consumer: str
    block: float = attrs.field(kw_only=True)
    claim_idle: float = attrs.field(kw_only=True)
    _recovered_own: bool = attrs.field(init=False, default=False)
    _claim_cursor: bytes = attrs.field(init=False, default=_START)
    _next_claim: float = attrs.field(init=False, default=0.0)
    _read: int = attrs.field(init=False, default=0)
    _recovered: int = attrs.field(init=False, default=0)
    _claimed: int = attrs.field(init=False, default=0)

    async def read(self, count: int) -> tuple[StreamEntry, ...]:
        """Up to ``count`` entries for this consumer, waiting up to ``block`` for new ones.

        Cancellation:
            Safe: entries a cancelled read was given stay pending for this consumer
            and are recovered or claimed later.
        """
        if not self._recovered_own:
            self._recovered_own = True
            own = await self.link.run(lambda: self._recover_own(count), "recover pending")
            if own:
                self._recovered += len(own)
                return own
        if trio.current_time() >= self._next_claim:
            claimed = await self.link.run(lambda: self._claim(count), "xautoclaim")
            if claimed:
                self._claimed += len(claimed)
                return claimed
        fresh = await self.link.run(lambda: self._read_new(count), "xreadgroup")
        self._read += len(fresh)
        return fresh

    async def _recover_own(self, count: int) -> tuple[StreamEntry, ...]:
        pending = await self.link.client.xpending(
            self.stream, self.group, start="-", end="+", count=count, consumer=self.consumer
        )
        assert isinstance(pending, tuple)
        ids = [item.identifier for item in pending if isinstance(item, StreamPendingExt)]
        if not ids:
            return ()
        self._recovered_own = len(ids) < count  # more to recover on the next read
        entries = await self.link.client.xclaim(self.stream, self.group, self.consumer, 0, ids)
        return tuple(e for e in entries if isinstance(e, StreamEntry))

    async def _claim(self, count: int) -> tuple[StreamEntry, ...]:
        idle_ms = int(self.claim_idle * 1000)
        reply = await self.link.client.xautoclaim(
            self.stream, self.group, self.consumer, idle_ms, self._claim_cursor, count=count
        )
        cursor, entries = reply[0], reply[1]
        self._claim_cursor = cursor
        claimed = tuple(e for e in entries if isinstance(e, StreamEntry))
        if not claimed:
            # Nothing idle in this part of the pending list (mostly this consumer's own
            # fresh entries): rest a while rather than scan it on every read.
            self._next_claim = trio.current_time() + self.claim_idle / 2
        return claimed

    async def _read_new(self, count: int) -> tuple[StreamEntry, ...]:
        try:
            reply = await self.link.client.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: ">"},
                count=count,
                block=int(self.block * 1000),
            )
        except (
            coredis.exceptions.StreamConsumerGroupError,
            coredis.exceptions.UnblockedError,
        ):
            # The stream or group is gone (deleted, or a Redis that lost its data):
            # make them again and go on.
            await ensure_group(self.link, self.stream, self.group)
            return ()
        if not reply:
            return ()
        return tuple(reply.get(self.stream.encode(), ()))

    async def touch(self, ids: Sequence[bytes]) -> None:
        """Keep ``ids`` (held by this consumer) from looking idle to other consumers."""
        if ids:
            await self.link.client.xclaim(
                self.stream, self.group, self.consumer, 0, list(ids), justid=True
            )

    def statistics(self) -> GroupStatistics:
        """A snapshot of the counters."""
        return GroupStatistics(read=self._read, recovered=self._recovered, claimed=self._claimed)
