"""Consumer functions that worker subprocesses run in the bridge's tests.

``meltica-trio worker --consumer bridge_workers:record`` (with ``tests/bridge`` on
``PYTHONPATH``). The environment says where to record and how to behave:

- ``BRIDGE_TEST_REDIS``, ``BRIDGE_TEST_PREFIX``: the Redis and key prefix of the test;
- ``BRIDGE_TEST_STALL_AFTER``: after this many events, record that this process is
  stuck inside the function (``<prefix>:test:stalled`` = its pid) and never return,
  so the test can kill it while it holds entries.
"""

from __future__ import annotations

import os

import coredis
import trio

from meltica_trio import Event, ExecReport
from meltica_trio.consumers import ConsumerContext

_URL = os.environ.get("BRIDGE_TEST_REDIS", "redis://127.0.0.1:6379/0")
_PREFIX = os.environ.get("BRIDGE_TEST_PREFIX", "mt-test")
_STALL_AFTER = int(os.environ.get("BRIDGE_TEST_STALL_AFTER", "0"))
_handled = [0]


async def record(event: Event, ctx: ConsumerContext) -> None:
    """Count each execution report by exec id (and by process) in Redis."""
    if not isinstance(event.payload, ExecReport):
        return
    _handled[0] += 1
    async with coredis.Redis.from_url(_URL) as client:
        if _STALL_AFTER and _handled[0] > _STALL_AFTER:
            await client.set(f"{_PREFIX}:test:stalled", str(os.getpid()))
            await trio.sleep_forever()
        await client.hincrby(f"{_PREFIX}:test:processed", event.payload.exec_id, 1)
        await client.hincrby(f"{_PREFIX}:test:by", str(os.getpid()), 1)
