"""One Redis client and what its users know of the connection's health.

coredis reconnects by itself on the next command once a connection broke; the
:class:`Link` decides *when* that next command is sent: after a failure every task
that shares the link waits a capped, jittered pause that grows with its own run of
failures, so a Redis restart is not met by a thundering herd of reconnects.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final, TypeVar

import attrs
import coredis
import coredis.exceptions
import trio
from coredis.retry import NoRetryPolicy

from meltica_trio.providers import Backoff

from ._defaults import CONNECT_TIMEOUT, STREAM_TIMEOUT

log = logging.getLogger(__name__)

T = TypeVar("T")

Client = coredis.Redis[bytes]
"""The coredis client the bridge uses: bytes in, bytes out."""

LINK_ERRORS: Final = (coredis.exceptions.ConnectionError, TimeoutError, OSError)
"""What a lost or refused connection raises: the operation may be retried."""


@attrs.frozen(kw_only=True)
class LinkStatistics:
    """The health of one Redis link.

    Attributes:
        up: whether the last operation succeeded.
        failures: operations that failed on the connection.
        outages: times the link went from up to down.
        last_error: the latest connection failure, in words.
    """

    up: bool
    failures: int
    outages: int
    last_error: str | None


@attrs.define(eq=False)
class Link:
    """A coredis client shared by the tasks of one bridge or worker.

    Args:
        client: an entered coredis client (see :func:`open_link`).
        backoff: pauses between attempts after failures.
        rng: draws the jitter.
    """

    client: Client
    backoff: Backoff
    rng: random.Random = attrs.field(factory=random.Random)
    _up: bool = attrs.field(init=False, default=True)
    _failures: int = attrs.field(init=False, default=0)
    _outages: int = attrs.field(init=False, default=0)
    _last_error: str | None = attrs.field(init=False, default=None)

    @property
    def up(self) -> bool:
        """Whether the last operation on the link succeeded."""
        return self._up

    def failed(self, exc: BaseException, what: str) -> None:
        """Record a connection failure of operation ``what``."""
        self._failures += 1
        self._last_error = f"{what}: {type(exc).__name__}: {exc}"
        if self._up:
            self._up = False
            self._outages += 1
            log.warning("redis link down (%s)", self._last_error)

    def succeeded(self) -> None:
        """Record a successful operation (the link is up)."""
        if not self._up:
            self._up = True
            log.warning("redis link up again after %d failures", self._failures)

    async def pause(self, attempt: int) -> None:
        """Wait before attempt ``attempt + 1`` (``attempt`` failures in a row so far)."""
        await trio.sleep(self.backoff.delay(attempt, self.rng.random))

    async def run(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        """Run ``operation`` until it gets through, pausing after each connection failure.

        Errors other than connection failures (a WRONGTYPE reply, say) propagate.

        Cancellation:
            Safe; an operation cancelled in flight may or may not have reached Redis.
        """
        attempt = 0
        while True:
            try:
                result = await operation()
            except LINK_ERRORS as exc:
                attempt += 1
                self.failed(exc, what)
                await self.pause(attempt)
                continue
            self.succeeded()
            return result

    def statistics(self) -> LinkStatistics:
        """A snapshot of the link's health."""
        return LinkStatistics(
            up=self._up,
            failures=self._failures,
            outages=self._outages,
            last_error=self._last_error,
        )


@asynccontextmanager
async def open_link(
    url: str, backoff: Backoff, *, rng: random.Random | None = None
) -> AsyncIterator[Link]:
    """A :class:`Link` to the Redis at ``url`` for the duration of the block.

    Opening does not wait for Redis: a server that is down is found out, and
    waited for, by the first operation.
    """
    client: Client = coredis.Redis.from_url(
        url,
        decode_responses=False,
        retry_policy=NoRetryPolicy(),  # the Link paces retries, not coredis
        connect_timeout=CONNECT_TIMEOUT,
        stream_timeout=STREAM_TIMEOUT,
    )
    async with client:
        yield Link(client, backoff, rng or random.Random())
