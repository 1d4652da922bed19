"""Consumer functions that worker subprocesses run in the bridge's tests.

``meltica-trio worker --consumer bridge_workers:record`` (with ``tests/bridge`` on
``PYTHONPATH``). The environment says where to record and how to behave:

- ``BRIDGE_TEST_REDIS``, ``BRIDGE_TEST_PREFIX``: the Redis and key prefix of the test;
- ``BRIDGE_TEST_STALL_AFTER``: after this many events, record that this process is
  stuck inside the function (``<prefix>:test:stalled`` = its pid) and never return,
  so the test can kill it while it holds entries;
- ``BRIDGE_TEST_GO_KEY``: importing this module waits until that key exists, so a
  test can start a process early (imports take a second) and let it run later.
"""

from __future__ import annotations

import os
import socket
import time

import coredis
import trio

from meltica_trio import Event, ExecReport
from meltica_trio.consumers import ConsumerContext

_URL = os.environ.get("BRIDGE_TEST_REDIS", "redis://127.0.0.1:6379/0")
_PREFIX = os.environ.get("BRIDGE_TEST_PREFIX", "mt-test")
_STALL_AFTER = int(os.environ.get("BRIDGE_TEST_STALL_AFTER", "0"))
_handled = [0]


def _wait_for_go(key: str) -> None:
    """Block (at import, before the worker starts) until ``key`` exists in Redis."""
    host_port = _URL.removeprefix("redis://").split("/")[0]
    host, port = host_port.split(":")
    command = f"*2\r\n$6\r\nEXISTS\r\n${len(key)}\r\n{key}\r\n".encode()
    with socket.create_connection((host, int(port))) as sock:
        while True:
            sock.sendall(command)
            if sock.recv(16) == b":1\r\n":
                return
            time.sleep(0.01)


if os.environ.get("BRIDGE_TEST_GO_KEY"):
    _wait_for_go(os.environ["BRIDGE_TEST_GO_KEY"])


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
