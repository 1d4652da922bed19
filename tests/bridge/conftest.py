"""Redis for the bridge's tests: the shared local server, or one of the test's own.

- ``redis_url``: the Redis at 127.0.0.1:6379 (database 0). Tests share it, so each
  one keeps its keys under ``redis_prefix`` (unique per test; every key under it
  is deleted afterwards) instead of flushing anything.
- ``redis_server``: a ``redis-server`` of the test's own on a free port, with an
  append-only file fsynced on every write, which the test may stop and restart.

Without a Redis (or a ``redis-server`` binary) these fixtures skip the test and
say why, except when ``MELTICA_REQUIRE_REDIS=1`` (``.ci/run`` sets it): then they
fail it, so CI cannot pass without running them.

One warning is ignored here, and only here: coredis 6.9 opens a connection's six
anyio memory streams before it connects and closes them only once connected, so a
connect that is refused (Redis down) or cancelled (a reader stopped while it was
connecting) leaves them to the garbage collector, which warns. Every test of this
directory ends with a collection under that filter, so nothing spills into others.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Final

import attrs
import coredis
import pytest
import trio

COREDIS_LEAK: Final = "ignore:Unclosed <MemoryObject:ResourceWarning"
"""The one warning ignored (see the module docstring)."""

REDIS_HOST: Final = "127.0.0.1"
REDIS_PORT: Final = 6379
START_TIMEOUT: Final = 10.0
"""Seconds a redis-server of a test's own may take to accept connections."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Ignore coredis' unclosed-stream warning in this directory's tests only."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings(COREDIS_LEAK))


@pytest.fixture(autouse=True)
def _collect_coredis_garbage(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used Redis, collect garbage while its warning filters apply."""
    yield
    if {"redis_url", "redis_server"} & set(request.fixturenames):
        gc.collect()


def _missing(reason: str) -> None:
    if os.environ.get("MELTICA_REQUIRE_REDIS") == "1":
        pytest.fail(f"{reason}, and MELTICA_REQUIRE_REDIS=1 forbids skipping", pytrace=False)
    pytest.skip(f"{reason} (set MELTICA_REQUIRE_REDIS=1 to make this a failure)")


def _answers_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared local Redis; keep your keys under ``redis_prefix``."""
    if not _answers_ping(REDIS_HOST, REDIS_PORT):
        _missing(f"no Redis answers at {REDIS_HOST}:{REDIS_PORT}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix no other test (or concurrent run) uses; its keys go afterwards."""
    prefix = f"mt-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    async with coredis.Redis.from_url(redis_url) as client:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(keys)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((REDIS_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@attrs.define(eq=False)
class RedisServer:
    """A redis-server of the test's own; ``stop`` and ``start`` keep its port and data."""

    binary: str
    directory: Path
    port: int
    _process: trio.Process | None = None

    @property
    def url(self) -> str:
        """Where it listens (also while it is stopped)."""
        return f"redis://{REDIS_HOST}:{self.port}/0"

    async def start(self) -> None:
        """Start it and wait until it answers PING (its data comes back from the AOF)."""
        assert self._process is None, "already running"
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", REDIS_HOST,
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self._process = await trio.lowlevel.open_process(command)
        with trio.fail_after(START_TIMEOUT):
            # No event to wait on in another process: poll its port.
            while not await trio.to_thread.run_sync(_answers_ping, REDIS_HOST, self.port):  # noqa: ASYNC110
                await trio.sleep(0.02)

    async def stop(self) -> None:
        """Shut it down as an operator would (SIGTERM: clients are refused at once)."""
        process, self._process = self._process, None
        assert process is not None, "not running"
        process.send_signal(signal.SIGTERM)
        await process.wait()


@pytest.fixture
def redis_server_binary() -> str:
    """The ``redis-server`` executable (a sync fixture: a skip here keeps its reason)."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(binary, os.X_OK):
        _missing("no redis-server binary to start a Redis of the test's own")
    return binary


@pytest.fixture
async def redis_server(redis_server_binary: str, tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A running redis-server on a free port, stopped (if it still runs) at the end."""
    server = RedisServer(redis_server_binary, tmp_path, _free_port())
    await server.start()
    try:
        yield server
    finally:
        if server._process is not None:
            with trio.CancelScope(shield=True):
                await server.stop()
