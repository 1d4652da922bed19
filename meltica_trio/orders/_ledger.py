"""The idempotency ledger: one order per ``(consumer_id, client_order_id)``.

The gateway records every accepted SubmitOrder here with the outcome it answered.
A second SubmitOrder with the same key finds the entry and gets the same outcome
back; no second venue order is ever made for it. Entries are kept for ``ttl``
seconds of the trio clock; the ledger holds at most ``max_entries`` of them and,
when full of unexpired entries, refuses new orders (fails closed) rather than
forget a key that may still be resent.

:class:`OrderLedger` is the protocol the gateway uses; :class:`MemoryLedger` is the
in-process implementation. The protocol is synchronous because the control task
consults it inside ``check``/``apply``, which never wait, except for
:meth:`OrderLedger.claim`, which the gateway's worker awaits before an order goes to
the venue. A shared ledger (``meltica_trio.bridge.RedisLedger``) answers lookups from
a local mirror loaded before the gateway serves, and makes each entry binding in
``claim``: when another gateway recorded the same key first, the order is not sent.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from meltica_trio.bus import Outcome, SubmitOrder

from ._defaults import LEDGER_MAX_ENTRIES, LEDGER_TTL
from ._errors import LedgerFullError


@attrs.frozen
class OrderKey:
    """What makes an order unique: the consumer and its own id for the order."""

    consumer_id: str
    client_order_id: str

    def hexdigest(self) -> str:
        """32 hex digits naming this key, whatever its ids hold (for venues and stores)."""
        raw = f"{self.consumer_id}\x1f{self.client_order_id}".encode()
        return hashlib.blake2b(raw, digest_size=16).hexdigest()


@attrs.frozen(kw_only=True)
class LedgerEntry:
    """One accepted order: the command, the outcome answered, and when (trio clock)."""

    key: OrderKey
    command: SubmitOrder
    outcome: Outcome
    recorded_at: float


@attrs.frozen(kw_only=True)
class LedgerStatistics:
    """Entries held now, and counts since the ledger was made (duplicates are counted by
    the gateway, since a lookup must change nothing)."""

    entries: int
    recorded: int
    expired: int
    refused_full: int


class OrderLedger(Protocol):
    """Where the gateway remembers the orders it accepted."""

    def lookup(self, key: OrderKey) -> LedgerEntry | None:
        """The unexpired entry for ``key``, or None. Changes nothing."""

    def has_room(self) -> bool:
        """True if :meth:`record` would accept a new key now. Changes nothing."""

    def record(self, key: OrderKey, command: SubmitOrder, outcome: Outcome) -> LedgerEntry:
        """Remember an accepted order and its outcome, stamped now (expiring old entries).

        Raises:
            LedgerFullError: the ledger is full of unexpired entries.
            KeyError: an unexpired entry for the key exists.
        """

    def expire(self) -> list[OrderKey]:
        """Forget the expired entries; returns their keys."""

    def statistics(self) -> LedgerStatistics:
        """Counters of the ledger."""

    async def claim(self, key: OrderKey) -> LedgerEntry | None:
        """Make the entry recorded for ``key`` binding before its order is sent.

        Returns None when the entry is this ledger's own; otherwise the entry that
        another gateway sharing the ledger recorded first (it replaces the local
        one), and the order must not be sent.
        """


@attrs.define(eq=False)
class MemoryLedger:
    """The in-process ledger: insertion order is expiry order.

    Args:
        ttl: seconds an entry is kept.
        max_entries: entries kept at once.
        clock: seconds, monotonic (the trio clock, so tests use ``MockClock``).
    """

    ttl: float = LEDGER_TTL
    max_entries: int = LEDGER_MAX_ENTRIES
    clock: Callable[[], float] = trio.current_time
    _entries: OrderedDict[OrderKey, LedgerEntry] = attrs.field(init=False, factory=OrderedDict)
    _recorded: int = attrs.field(init=False, default=0)
    _expired: int = attrs.field(init=False, default=0)
    _refused_full: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        if self.ttl <= 0 or self.max_entries < 1:
            raise ValueError("ledger ttl must be above 0 and max_entries at least 1")

    def __len__(self) -> int:
        return len(self._entries)

    def _alive(self, entry: LedgerEntry, now: float) -> bool:
        return now - entry.recorded_at < self.ttl

    def lookup(self, key: OrderKey) -> LedgerEntry | None:
        """The unexpired entry for ``key``, or None. Changes nothing."""
        entry = self._entries.get(key)
        if entry is None or not self._alive(entry, self.clock()):
            return None
        return entry

    def has_room(self) -> bool:
        """True if :meth:`record` would accept a new key now. Changes nothing."""
        if len(self._entries) < self.max_entries:
            return True
        oldest = next(iter(self._entries.values()))
        return not self._alive(oldest, self.clock())

    def record(self, key: OrderKey, command: SubmitOrder, outcome: Outcome) -> LedgerEntry:
        """Remember an accepted order and its outcome, stamped now (expiring old entries).

        Raises:
            LedgerFullError: the ledger is full of unexpired entries.
            KeyError: an unexpired entry for the key exists.
        """
        self.expire()
        if key in self._entries:
            raise KeyError(key)
        if len(self._entries) >= self.max_entries:
            self._refused_full += 1
            raise LedgerFullError(self.max_entries)
        entry = LedgerEntry(key=key, command=command, outcome=outcome, recorded_at=self.clock())
        self._entries[key] = entry
        self._recorded += 1
        return entry

    def expire(self) -> list[OrderKey]:
        """Forget the expired entries; returns their keys."""
        now = self.clock()
        gone: list[OrderKey] = []
        while self._entries:
            key, oldest = next(iter(self._entries.items()))
            if self._alive(oldest, now):
                break
            self._entries.popitem(last=False)
            gone.append(key)
        self._expired += len(gone)
        return gone

    async def claim(self, key: OrderKey) -> LedgerEntry | None:
        """Nothing to wait for: no other gateway shares an in-process ledger."""
        return None

    def restore(self, entry: LedgerEntry) -> None:
        """Hold ``entry``, recorded elsewhere, in place of any entry for its key.

        For a mirror of a shared ledger. A replaced entry keeps its place in the
        expiry order, so it may be forgotten a little late, never early.
        """
        self._entries[entry.key] = entry

    def statistics(self) -> LedgerStatistics:
        """Counters of the ledger."""
        return LedgerStatistics(
            entries=len(self._entries),
            recorded=self._recorded,
            expired=self._expired,
            refused_full=self._refused_full,
        )
