"""The idempotency ledger: entries expire on the trio clock, the size is bounded."""

from __future__ import annotations

import pytest
import trio

from meltica_trio.bus import Outcome, SubmitOrder
from meltica_trio.orders import LedgerFullError, MemoryLedger, OrderKey


def command(client_order_id: str) -> SubmitOrder:
    return SubmitOrder(
        consumer_id="c1",
        client_order_id=client_order_id,
        provider="binance",
        instrument="BTC-USDT",
        side="buy",
        quantity="1",
    )


OK = Outcome(True, None, (("state", "new"),))


async def test_an_entry_answers_lookups_until_it_expires(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = MemoryLedger(ttl=10)
    key = OrderKey("c1", "o-1")
    entry = ledger.record(key, command("o-1"), OK)
    assert ledger.lookup(key) is entry
    assert entry.recorded_at == trio.current_time()
    await trio.sleep(9.5)
    assert ledger.lookup(key) is entry
    await trio.sleep(0.5)
    assert ledger.lookup(key) is None  # expired, though not yet forgotten
    assert len(ledger) == 1
    assert ledger.expire() == [key]
    assert len(ledger) == 0
    assert ledger.statistics().expired == 1


async def test_lookups_of_other_keys_find_nothing() -> None:
    ledger = MemoryLedger()
    ledger.record(OrderKey("c1", "o-1"), command("o-1"), OK)
    assert ledger.lookup(OrderKey("c2", "o-1")) is None
    assert ledger.lookup(OrderKey("c1", "o-2")) is None


async def test_recording_a_key_twice_raises() -> None:
    ledger = MemoryLedger()
    key = OrderKey("c1", "o-1")
    ledger.record(key, command("o-1"), OK)
    with pytest.raises(KeyError):
        ledger.record(key, command("o-1"), OK)


async def test_a_full_ledger_refuses_until_old_entries_expire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = MemoryLedger(ttl=60, max_entries=2)
    ledger.record(OrderKey("c1", "a"), command("a"), OK)
    await trio.sleep(30)
    ledger.record(OrderKey("c1", "b"), command("b"), OK)
    assert not ledger.has_room()
    with pytest.raises(LedgerFullError) as info:
        ledger.record(OrderKey("c1", "c"), command("c"), OK)
    assert info.value.max_entries == 2
    await trio.sleep(30)  # "a" expires
    assert ledger.has_room()
    assert len(ledger) == 2  # has_room changed nothing
    ledger.record(OrderKey("c1", "c"), command("c"), OK)
    assert ledger.lookup(OrderKey("c1", "a")) is None
    assert ledger.lookup(OrderKey("c1", "b")) is not None
    stats = ledger.statistics()
    assert (stats.entries, stats.recorded, stats.expired, stats.refused_full) == (2, 3, 1, 1)


async def test_expiry_stops_at_the_first_live_entry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ledger = MemoryLedger(ttl=10)
    for i in range(5):
        ledger.record(OrderKey("c1", str(i)), command(str(i)), OK)
        await trio.sleep(3)
    # Recorded at 0, 3, 6, 9, 12 (recording at 12 forgot the one of 0); now 15.
    assert ledger.expire() == [OrderKey("c1", "1")]
    assert len(ledger) == 3
    assert ledger.statistics().expired == 2


def test_a_ledger_needs_a_positive_ttl_and_size() -> None:
    with pytest.raises(ValueError, match="ttl"):
        MemoryLedger(ttl=0)
    with pytest.raises(ValueError, match="max_entries"):
        MemoryLedger(max_entries=0)
