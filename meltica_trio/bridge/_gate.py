"""Exactly-once apply over an at-least-once wire: one mark per apply id in Redis.

Streams deliver at least once: an exporter resends a batch whose reply it lost,
and a dead worker's pending entries are claimed and delivered again. Before an
entry is applied its apply id is *begun* (atomically, in a script), and when the
function has returned the mark is set to ``done`` in the same script as the XACK::

    no mark                   -> mark "run:<consumer>|<entry>", apply
    "done"                    -> already applied: acknowledge, do not apply
    "run:...|<this entry>"    -> this very entry was begun by a worker that died
                                 (its entry was claimed): take over, apply again
    "run:...|<other entry>"   -> a copy of an event another entry is applying:
                                 acknowledge this copy, do not apply

The one window left: a worker killed after its function returned and before the
script reached Redis. Its entry is claimed and the function runs once more for that
event. ``docs/explanation/bridge.md`` says how to close it for effects that matter.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Sequence
from typing import Final

import attrs
from coredis.commands.script import Script
from coredis.patterns.pipeline import Pipeline

from ._link import Client
from ._streams import StreamNames

_BEGIN: Final = """
local verdicts = {}
for i, key in ipairs(KEYS) do
  local entry = ARGV[i + 2]
  local current = redis.call('GET', key)
  if current == 'done' then
    verdicts[i] = 0
  elseif current and string.match(current, '|(.*)$') ~= entry then
    verdicts[i] = 2
  else
    redis.call('SET', key, ARGV[1] .. '|' .. entry, 'PX', ARGV[2])
    verdicts[i] = 1
  end
end
return verdicts
"""
"""KEYS: apply marks; ARGV: token, ttl in ms, then each mark's entry id."""

_FINISH: Final = """
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], 'done', 'PX', ARGV[2])
end
for i = 3, #ARGV, 1000 do
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return #ARGV - 2
"""
"""KEYS: the stream, then the marks to set done; ARGV: group, ttl in ms, then entry ids."""


class Verdict(enum.Enum):
    """What to do with an entry whose apply id was just begun."""

    APPLY = 1
    """Run the function on it."""
    APPLIED = 0
    """Applied before: acknowledge it, nothing more."""
    DUPLICATE = 2
    """Another entry carries the same event and is being applied: acknowledge this one."""


@attrs.define(eq=False)
class ApplyGate:
    """The apply marks of one consumer group.

    Args:
        client: the Redis client.
        names: the key names.
        group: whose marks these are (a remote consumer, or the bridge's group).
        consumer: this reader's consumer name, recorded in the marks it begins.
        ttl: seconds a mark is kept.
    """

    client: Client
    names: StreamNames
    group: str
    consumer: str
    ttl: float
    _begin: Script[bytes] = attrs.field(init=False)
    _finish: Script[bytes] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._begin = self.client.register_script(_BEGIN)
        self._finish = self.client.register_script(_FINISH)

    @property
    def _ttl_ms(self) -> int:
        return int(self.ttl * 1000)

    def key(self, apply_id: str) -> str:
        """The Redis key of ``apply_id``'s mark."""
        return self.names.applied(self.group, apply_id)

    async def begin(self, entries: Sequence[tuple[bytes, str]]) -> list[Verdict]:
        """Begin (entry id, apply id) pairs in one script; a verdict for each."""
        if not entries:
            return []
        keys = [self.key(apply) for _, apply in entries]
        args: list[bytes | int] = [f"run:{self.consumer}".encode(), self._ttl_ms]
        args.extend(entry for entry, _ in entries)
        verdicts = typing.cast(list[int], await self._begin(keys=keys, args=args))
        return [Verdict(int(v)) for v in verdicts]

    def finish(
        self,
        pipe: Pipeline[bytes],
        stream: str,
        applied: Sequence[tuple[bytes, str]],
        others: Sequence[bytes] = (),
    ) -> None:
        """Queue, in ``pipe``, one script that marks ``applied`` done and XACKs them all.

        Args:
            pipe: the pipeline (a MULTI, when other writes must go with it).
            stream: the stream the entries came from (read by this gate's group).
            applied: (entry id, apply id) of entries whose function has returned.
            others: entry ids to acknowledge without a mark (duplicates, malformed).
        """
        keys = [stream, *(self.key(apply) for _, apply in applied)]
        args: list[str | bytes | int] = [self.group, self._ttl_ms]
        args.extend(entry for entry, _ in applied)
        args.extend(others)
        self._finish(keys=keys, args=args, client=pipe)
