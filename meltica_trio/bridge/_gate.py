"""Exactly-once apply over an at-least-once wire: one mark per apply id in Redis.

Streams deliver at least once: an exporter resends a batch whose reply it lost,
and a dead worker's pending entries are claimed and delivered again. Before an
entry is applied its apply id is *begun* (atomically, in a script), and when the
function has returned the mark is set to ``done`` in the same MULTI as the XACK::

    no mark                   -> mark "run:<consumer>|<entry>", apply
    "done"                    -> already applied: acknowledge, do not apply
    "run:...|<this entry>"    -> this very entry was begun by a worker that died
                                 (its entry was claimed): take over, apply again
    "run:...|<other entry>"   -> a copy of an event another entry is applying:
                                 acknowledge this copy, do not apply

The one window left: a worker killed after its function returned and before the
MULTI reached Redis. Its entry is claimed and the function runs once more for that
event. ``docs/explanation/bridge.md`` says how to close it for effects that matter.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Sequence
from typing import Final

import attrs
from coredis.commands import CommandRequest
from coredis.commands.script import Script
from coredis.patterns.pipeline import Pipeline
from coredis.typing import ResponseType

from ._link import Client
from ._streams import StreamNames

DONE: Final = b"done"

_BEGIN: Final = """
local current = redis.call('GET', KEYS[1])
if current == 'done' then return 0 end
if current then
  local entry = string.match(current, '|(.*)$')
  if entry ~= ARGV[2] then return 2 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1
"""


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
    _script: Script[bytes] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._script = self.client.register_script(_BEGIN)

    def key(self, apply_id: str) -> str:
        """The Redis key of ``apply_id``'s mark."""
        return self.names.applied(self.group, apply_id)

    async def begin(self, entries: Sequence[tuple[bytes, str]]) -> list[Verdict]:
        """Begin (entry id, apply id) pairs, one round trip; a verdict for each."""
        if not entries:
            return []
        token = f"run:{self.consumer}".encode()
        ttl_ms = int(self.ttl * 1000)
        async with self.client.pipeline(transaction=False) as pipe:
            replies: list[CommandRequest[ResponseType]] = [
                self._script(keys=[self.key(apply)], args=[token, entry_id, ttl_ms], client=pipe)
                for entry_id, apply in entries
            ]
        return [Verdict(int(typing.cast(int, await reply))) for reply in replies]

    def finish(self, pipe: Pipeline[bytes], apply_id: str) -> None:
        """Queue, in ``pipe`` (a MULTI with the XACK), the mark that says it is applied."""
        pipe.set(self.key(apply_id), DONE, px=int(self.ttl * 1000))
