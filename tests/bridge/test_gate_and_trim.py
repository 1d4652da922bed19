"""The apply marks' verdicts and the trim floor, each against a real Redis."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import coredis
import pytest
import trio

from meltica_trio.bridge import StreamNames, Verdict
from meltica_trio.bridge._gate import ApplyGate
from meltica_trio.bridge._link import Link, open_link
from meltica_trio.bridge._trim import Trimmer
from meltica_trio.providers import Backoff


@pytest.fixture
async def link(redis_url: str) -> AsyncIterator[Link]:
    async with open_link(redis_url, Backoff(), rng=random.Random(1)) as link:
        yield link


async def test_apply_verdicts_follow_the_mark(link: Link, redis_prefix: str) -> None:
    names = StreamNames(redis_prefix)
    alive = ApplyGate(link.client, names, "g1", "alive", ttl=60.0)
    other = ApplyGate(link.client, names, "g1", "other", ttl=60.0)
    assert await alive.begin([(b"1-0", "a"), (b"1-1", "b")]) == [Verdict.APPLY, Verdict.APPLY]
    # Another entry with the same apply id, while "a" is being applied: a copy.
    assert await other.begin([(b"2-0", "a")]) == [Verdict.DUPLICATE]
    # The same entry, claimed from a consumer that died: taken over.
    assert await other.begin([(b"1-1", "b")]) == [Verdict.APPLY]
    assert await link.client.get(alive.key("b")) == b"run:other|1-1"
    stream = f"{redis_prefix}:crit:g1"
    ids = [await link.client.xadd(stream, {b"n": b"1"}) for _ in range(3)]
    await link.client.xgroup_create(stream, "g1", identifier="0")
    await link.client.xreadgroup("g1", "alive", {stream: ">"}, count=3)
    async with link.client.pipeline(transaction=True) as multi:
        alive.finish(multi, stream, [(ids[0], "a")], [ids[1]])
    assert await other.begin([(b"1-0", "a"), (b"3-0", "a")]) == [Verdict.APPLIED] * 2
    assert 0 < await link.client.pttl(alive.key("a")) <= 60_000
    pending = await link.client.xpending(stream, "g1")
    assert (pending.pending, pending.minimum_identifier) == (1, ids[2])
    assert await alive.begin([]) == []


async def _stream(client: coredis.Redis[bytes], key: str, entries: int) -> list[bytes]:
    return [await client.xadd(key, {b"n": str(n).encode()}) for n in range(entries)]


async def test_trim_keeps_what_any_group_still_needs(link: Link, redis_prefix: str) -> None:
    client = link.client
    stream = f"{redis_prefix}:crit:g"
    ids = await _stream(client, stream, 10)
    trimmer = Trimmer(link, lambda: [stream], interval=60.0)
    assert await trimmer.trim(stream) == 0  # no group: nobody acknowledged anything
    await client.xgroup_create(stream, "fast", identifier="0")
    await client.xgroup_create(stream, "slow", identifier="0")
    await client.xreadgroup("fast", "c", {stream: ">"}, count=10)
    await client.xack(stream, "fast", ids[:8])  # 8 and 9 still pending
    await client.xreadgroup("slow", "c", {stream: ">"}, count=6)
    await client.xack(stream, "slow", ids[:3])  # 3, 4, 5 pending; 6.. not delivered yet
    assert await trimmer.trim(stream) == 3
    assert [e.identifier for e in await client.xrange(stream)] == ids[3:]
    await client.xack(stream, "slow", ids[3:6])
    await client.xreadgroup("slow", "c", {stream: ">"}, count=10)
    await client.xack(stream, "slow", ids[6:])
    assert await trimmer.trim(stream) == 5  # now only the fast group's pending 8, 9 stay
    assert [e.identifier for e in await client.xrange(stream)] == ids[8:]
    assert await trimmer.trim(f"{redis_prefix}:no-such-stream") == 0
    assert trimmer.statistics().trimmed == 8


async def test_the_trimmer_runs_every_interval(link: Link, redis_prefix: str) -> None:
    stream = f"{redis_prefix}:control"
    ids = await _stream(link.client, stream, 3)
    await link.client.xgroup_create(stream, "bridge", identifier="0")
    await link.client.xreadgroup("bridge", "c", {stream: ">"}, count=3)
    await link.client.xack(stream, "bridge", ids)
    trimmer = Trimmer(link, lambda: [stream], interval=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(trimmer.serve)
        with trio.fail_after(5):
            while await link.client.xlen(stream):  # noqa: ASYNC110 (Redis state)
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert trimmer.statistics().passes >= 1
