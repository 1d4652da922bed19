"""Trimming streams read by consumer groups: only what every group has acknowledged.

A critical or control stream is never trimmed by length. Instead the bridge
periodically removes the entries below the *floor*: the lowest id any group of the
stream may still need, which is, per group, its oldest pending entry or, with none
pending, the entry after the last one delivered to it. A stream without groups is
left alone (nobody has acknowledged anything). The floor is computed and applied in
one script, so no read can slip between the look and the trim; and since pending
lists only shrink from below and delivery only moves forward, the floor is never
above what a group still needs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Final

import attrs
import trio
from coredis.commands.script import Script

from ._link import LINK_ERRORS, Link

log = logging.getLogger(__name__)

_TRIM: Final = """
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function below(a_ms, a_seq, b_ms, b_seq)
  return a_ms < b_ms or (a_ms == b_ms and a_seq < b_seq)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local floor_ms, floor_seq
for _, group in ipairs(groups) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local ms, seq
  local pending = redis.call('XPENDING', KEYS[1], info['name'])
  if pending[1] > 0 then
    ms, seq = parse(pending[2])
  else
    ms, seq = parse(info['last-delivered-id'])
    seq = seq + 1
  end
  if floor_ms == nil or below(ms, seq, floor_ms, floor_seq) then
    floor_ms, floor_seq = ms, seq
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', floor_ms .. '-' .. floor_seq)
"""


@attrs.frozen(kw_only=True)
class TrimStatistics:
    """Trim passes made, entries removed, and passes that failed on the connection."""

    passes: int
    trimmed: int
    failed: int


@attrs.define(eq=False)
class Trimmer:
    """Trims acknowledged entries from group-read streams every ``interval`` seconds.

    Args:
        link: the Redis link.
        streams: the streams to trim, asked again on every pass.
        interval: seconds between passes.
    """

    link: Link
    streams: Callable[[], Iterable[str]]
    interval: float
    _script: Script[bytes] = attrs.field(init=False)
    _passes: int = attrs.field(init=False, default=0)
    _trimmed: int = attrs.field(init=False, default=0)
    _failed: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self._script = self.link.client.register_script(_TRIM)

    async def trim(self, stream: str) -> int:
        """Remove ``stream``'s entries that every group has acknowledged; returns how many."""
        removed = int(await self._script(keys=[stream]))
        self._trimmed += removed
        return removed

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Trim every stream once per interval until cancelled."""
        task_status.started()
        while True:
            await trio.sleep(self.interval)
            self._passes += 1
            try:
                for stream in list(self.streams()):
                    await self.trim(stream)
            except LINK_ERRORS as exc:
                self._failed += 1
                log.info("trim pass skipped: %s", exc)  # the next pass tries again

    def statistics(self) -> TrimStatistics:
        """A snapshot of the counters."""
        return TrimStatistics(passes=self._passes, trimmed=self._trimmed, failed=self._failed)
