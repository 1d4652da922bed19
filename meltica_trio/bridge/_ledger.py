"""The order gateway's idempotency ledger, kept in Redis.

With it, a restarted gateway, or a second one sharing the Redis and the prefix,
still refuses a duplicate ``(consumer_id, client_order_id)`` and answers with the
original outcome.

Each accepted order is one key, ``<prefix>:ledger:<32 hex digits>`` (a hash of the
order key; the value names the key in full), holding the command and the outcome as
JSON, expiring after the ledger's ``ttl`` by Redis's own clock. The gateway consults
the ledger without waiting (see :mod:`meltica_trio.orders._ledger`), so lookups go to
a local mirror:

- :func:`open_redis_ledger` loads the mirror from Redis before the gateway serves,
  which is what makes a restarted gateway remember;
- :meth:`RedisLedger.claim`, awaited by the gateway before an order goes to the
  venue, writes the entry with ``SET NX``: the first gateway to record a key sends
  its order, any other finds the holder's entry, adopts it, and sends nothing. That
  is what makes two live gateways safe, whatever their mirrors knew.

A claim waits out a Redis outage (the link's backoff) rather than send an order whose
key is not recorded: orders fail closed.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import trio
from coredis.tokens import PureToken

from meltica_trio._errors import DecodeError
from meltica_trio.bus import Outcome, SubmitOrder
from meltica_trio.orders import LedgerEntry, LedgerStatistics, MemoryLedger, OrderKey
from meltica_trio.orders._defaults import LEDGER_MAX_ENTRIES, LEDGER_TTL
from meltica_trio.providers import Backoff

from ._config import default_backoff
from ._defaults import PREFIX
from ._link import Link, open_link
from ._streams import name_problem

log = logging.getLogger(__name__)

_SCAN_COUNT = 500
"""Keys asked for per SCAN while loading."""


def ledger_key(prefix: str, key: OrderKey) -> str:
    """The Redis key of ``key``'s entry (fixed length, whatever the ids hold)."""
    return f"{prefix}:ledger:{key.hexdigest()}"


def encode_entry(entry: LedgerEntry, owner: str) -> bytes:
    """The JSON stored for ``entry``, recorded by the ledger instance ``owner``."""
    command = attrs.asdict(entry.command)
    outcome = attrs.asdict(entry.outcome)
    return orjson.dumps({"owner": owner, "command": command, "outcome": outcome})


def decode_entry(raw: bytes, recorded_at: float) -> tuple[LedgerEntry, str]:
    """The entry stored as ``raw`` and the ledger instance that recorded it.

    Raises:
        DecodeError: ``raw`` is not an entry this module wrote.
    """
    try:
        document = orjson.loads(raw)
        owner = document["owner"]
        command = SubmitOrder(**document["command"])
        outcome = _outcome(document["outcome"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DecodeError("ledger", f"not a ledger entry: {exc}") from exc
    if not isinstance(owner, str) or not all(
        isinstance(value, str) for value in (command.consumer_id, command.client_order_id)
    ):
        raise DecodeError("ledger", "not a ledger entry: owner and ids must be strings")
    key = OrderKey(command.consumer_id, command.client_order_id)
    return LedgerEntry(key=key, command=command, outcome=outcome, recorded_at=recorded_at), owner


def _outcome(document: dict[str, Any]) -> Outcome:
    ok, reason, detail = document["ok"], document["reason"], document["detail"]
    if not isinstance(ok, bool) or not (reason is None or isinstance(reason, str)):
        raise TypeError("outcome ok must be a bool and reason a string or null")
    pairs = tuple((str(name), str(value)) for name, value in detail)
    return Outcome(ok, reason, pairs)


@attrs.define(eq=False)
class RedisLedger:
    """An :class:`~meltica_trio.orders.OrderLedger` shared through Redis.

    Make it with :func:`open_redis_ledger` and give it to the pipeline
    (``open_pipeline(..., order_ledger=ledger)``) or to an ``OrderGateway``.

    Args:
        link: the Redis connection.
        prefix: first part of every key; gateways that must refuse each other's
            duplicates use the same one.
        ttl: seconds an entry is kept (in Redis and in the mirror).
        max_entries: entries the mirror holds at once (beyond it, new orders are
            refused, as with the in-memory ledger).
        clock: the trio clock, for the mirror.
    """

    link: Link
    prefix: str = PREFIX
    ttl: float = LEDGER_TTL
    max_entries: int = LEDGER_MAX_ENTRIES
    clock: Callable[[], float] = trio.current_time
    _owner: str = attrs.field(init=False, factory=lambda: uuid.uuid4().hex)
    _mirror: MemoryLedger = attrs.field(init=False)
    _claims: int = attrs.field(init=False, default=0)
    _lost: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        problem = name_problem("prefix", self.prefix)
        if problem is not None:
            raise ValueError(problem)
        self._mirror = MemoryLedger(self.ttl, self.max_entries, self.clock)

    # -- the gateway's view: the mirror -------------------------------------------------

    def lookup(self, key: OrderKey) -> LedgerEntry | None:
        """The unexpired entry for ``key`` in the mirror, or None. Changes nothing."""
        return self._mirror.lookup(key)

    def has_room(self) -> bool:
        """True if :meth:`record` would accept a new key now. Changes nothing."""
        return self._mirror.has_room()

    def record(self, key: OrderKey, command: SubmitOrder, outcome: Outcome) -> LedgerEntry:
        """Record in the mirror; the entry reaches Redis when the order is claimed."""
        return self._mirror.record(key, command, outcome)

    def expire(self) -> list[OrderKey]:
        """Forget the mirror's expired entries (Redis expires its own)."""
        return self._mirror.expire()

    def statistics(self) -> LedgerStatistics:
        """The mirror's counters."""
        return self._mirror.statistics()

    @property
    def claims(self) -> tuple[int, int]:
        """Orders claimed in Redis so far, and how many of them another gateway held."""
        return self._claims, self._lost

    # -- Redis ----------------------------------------------------------------------------

    async def claim(self, key: OrderKey) -> LedgerEntry | None:
        """Write ``key``'s entry to Redis unless a gateway did first; see the module docs.

        Returns None when the entry is ours (also when an earlier attempt of ours,
        cut off by a lost connection, wrote it), else the holder's entry, now in
        the mirror.

        Cancellation:
            Safe: a claim cut short may or may not have been written; the order was
            not sent either way.
        """
        entry = self._mirror.lookup(key)
        if entry is None:
            return None  # expired before its worker came to it: nothing to protect
        self._claims += 1
        name, value = ledger_key(self.prefix, key), encode_entry(entry, self._owner)
        client, ttl_ms = self.link.client, max(1, round(self.ttl * 1000))
        while True:
            written = await self.link.run(
                lambda: client.set(name, value, condition=PureToken.NX, px=ttl_ms), "ledger claim"
            )
            if written:
                return None
            stored = await self.link.run(lambda: client.get(name), "ledger read")
            if stored is None:
                continue  # the holder's entry expired in between: try again
            try:
                holder, owner = decode_entry(stored, entry.recorded_at)
            except DecodeError as exc:
                # Unreadable, but it holds the key: fail closed and send nothing.
                log.error("ledger entry %s is unreadable (%s); order not sent", name, exc)
                self._lost += 1
                return entry
            if owner == self._owner:
                return None
            self._lost += 1
            self._mirror.restore(holder)
            return holder

    async def load(self) -> int:
        """Fill the mirror from Redis (newest entries first if they exceed the mirror).

        Returns the number of entries loaded; unreadable ones are skipped and logged
        (their keys still refuse a second order at claim time).
        """
        client = self.link.client
        pattern = f"{self.prefix}:ledger:*"
        found: list[LedgerEntry] = []
        now = self.clock()
        cursor: int | None = 0
        while cursor is not None:
            scan = functools.partial(client.scan, cursor, match=pattern, count=_SCAN_COUNT)
            cursor, names = await self.link.run(scan, "ledger scan")
            for name, stored, left_ms in await self._read(names):
                if stored is None or left_ms < 0:
                    continue  # expired since the scan
                age = max(0.0, self.ttl - left_ms / 1000)
                try:
                    entry, _ = decode_entry(stored, now - age)
                except DecodeError as exc:
                    log.error("ledger entry %s is unreadable (%s); skipped", name.decode(), exc)
                    continue
                found.append(entry)
            cursor = cursor or None
        found.sort(key=lambda entry: entry.recorded_at)
        for entry in found[-self.max_entries :]:
            self._mirror.restore(entry)
        return min(len(found), self.max_entries)

    async def _read(self, names: tuple[bytes, ...]) -> list[tuple[bytes, bytes | None, int]]:
        """Each name's value and milliseconds left, in one round trip."""

        async def fetch() -> list[tuple[bytes, bytes | None, int]]:
            async with self.link.client.pipeline(transaction=False) as pipe:
                values = [pipe.get(name) for name in names]
                left = [pipe.pttl(name) for name in names]
            return [
                (name, await value, await ms)
                for name, value, ms in zip(names, values, left, strict=True)
            ]

        return await self.link.run(fetch, "ledger load")


@asynccontextmanager
async def open_redis_ledger(
    url: str,
    *,
    prefix: str = PREFIX,
    ttl: float = LEDGER_TTL,
    max_entries: int = LEDGER_MAX_ENTRIES,
    backoff: Backoff | None = None,
) -> AsyncIterator[RedisLedger]:
    """A :class:`RedisLedger` on the Redis at ``url``, its mirror loaded, for the block.

    Waits for Redis (with backoff) if it is down: a gateway must not serve before it
    knows the orders it already accepted.
    """
    async with open_link(url, backoff or default_backoff()) as link:
        ledger = RedisLedger(link, prefix, ttl, max_entries)
        loaded = await ledger.load()
        if loaded:
            log.info("order ledger: %d entries loaded from %s", loaded, url)
        yield ledger
