"""The lifecycle benchmark's timed loops: a pooled duplicate against fresh envelopes.

Every loop binds what it calls and the values it passes to locals first, so the
figures are the operation itself, not global or attribute lookups around it. They
include the ``for _ in range(n)`` overhead, which is measured and shown on its own
row. The cases:

* ``fresh Event`` builds ``Event(...)`` with every field as a keyword, as users and
  parsers build one.
* ``bare attrs`` is the floor for any fresh allocation: a plain slotted attrs class
  with Event's fields (no base class, not kw_only), built positionally.
* ``minimal list pool`` is the floor for pooling: ``list.pop``, a field-by-field
  shallow copy, ``list.append``, written inline with no pool class. It does not
  reset the object on the way back (the real pool does, to drop the payload).
* ``pooled production`` is ``pool.duplicate_nowait(src)`` then ``recycler.recycle``
  with ``Recycler(debug=False)`` and a source Event carrying a Trade payload.
* ``pooled debug`` is the same with ``Recycler(debug=True)``: each recycle poisons
  and retires the object and records call sites, and each duplicate mints a fresh
  object, so it includes an allocation. It runs fewer iterations (``--debug-n``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, NamedTuple

import attrs

from meltica_trio.events import Event, Kind, Payload, Side, Trade
from meltica_trio.lifecycle import EventPool, Recycler

Timer = Callable[[int], int]
"""Runs ``n`` operations and returns the nanoseconds they took."""


@attrs.define(slots=True)
class BareEnvelope:
    """The floor for a fresh allocation: Event's fields, plain, slotted, positional."""

    event_id: int
    kind: Kind
    provider: str
    instrument: str
    seq: int | None
    ingest_ts: int
    emit_ts: int
    routing_version: int
    trace_id: str | None
    decision_id: str | None
    schema_version: int
    payload: Payload | None
    skipped: int


# -- the source every case copies or mirrors ---------------------------------


class EnvelopeFields(NamedTuple):
    """Event's fields as a typed tuple, so loops can unpack them into locals."""

    event_id: int
    kind: Kind
    provider: str
    instrument: str
    seq: int | None
    ingest_ts: int
    emit_ts: int
    routing_version: int
    trace_id: str | None
    decision_id: str | None
    schema_version: int
    payload: Payload | None
    skipped: int


SAMPLE: Final = EnvelopeFields(
    event_id=1,
    kind=Kind.TRADE,
    provider="binance",
    instrument="BTC-USDT",
    seq=412345678,
    ingest_ts=1_700_000_000_125_000_000,
    emit_ts=1_700_000_000_126_000_000,
    routing_version=3,
    trace_id="trace-0001",
    decision_id=None,
    schema_version=Event().schema_version,
    payload=Trade(
        price="39000.50",
        size="0.00123400",
        side=Side.BUY,
        trade_id="412345678",
        trade_ts=1_700_000_000_123_000_000,
    ),
    skipped=0,
)
"""A trade as a provider's parser would emit it: every field set, a real payload."""


def sample_event() -> Event:
    """A full Event built from :data:`SAMPLE`."""
    return Event(**SAMPLE._asdict())


def check_baseline_shape() -> int:
    """Event's field count, after making sure the baselines mirror its fields in order."""
    event_fields = [field.name for field in attrs.fields(Event)]
    bare_fields = [field.name for field in attrs.fields(BareEnvelope)]
    if not event_fields == bare_fields == list(EnvelopeFields._fields):
        raise RuntimeError(
            "BareEnvelope/EnvelopeFields no longer mirror Event's fields; update the benchmark:\n"
            f"  Event:          {event_fields}\n"
            f"  BareEnvelope:   {bare_fields}\n"
            f"  EnvelopeFields: {list(EnvelopeFields._fields)}"
        )
    return len(event_fields)


# -- timed loops ---------------------------------------------------------------


def time_empty_loop(n: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(n):
        pass
    return time.perf_counter_ns() - start


def time_fresh_event(n: int) -> int:
    new = Event
    # fmt: off
    (event_id, kind, provider, instrument, seq, ingest_ts, emit_ts, routing_version,
     trace_id, decision_id, schema_version, payload, skipped) = SAMPLE
    # fmt: on
    start = time.perf_counter_ns()
    for _ in range(n):
        new(
            event_id=event_id,
            kind=kind,
            provider=provider,
            instrument=instrument,
            seq=seq,
            ingest_ts=ingest_ts,
            emit_ts=emit_ts,
            routing_version=routing_version,
            trace_id=trace_id,
            decision_id=decision_id,
            schema_version=schema_version,
            payload=payload,
            skipped=skipped,
        )
    return time.perf_counter_ns() - start


def time_bare_positional(n: int) -> int:
    new = BareEnvelope
    # fmt: off
    (event_id, kind, provider, instrument, seq, ingest_ts, emit_ts, routing_version,
     trace_id, decision_id, schema_version, payload, skipped) = SAMPLE
    # fmt: on
    start = time.perf_counter_ns()
    for _ in range(n):
        # fmt: off
        new(event_id, kind, provider, instrument, seq, ingest_ts, emit_ts,
            routing_version, trace_id, decision_id, schema_version, payload, skipped)
        # fmt: on
    return time.perf_counter_ns() - start


def time_minimal_list_pool(n: int) -> int:
    src = BareEnvelope(*SAMPLE)
    free = [BareEnvelope(*SAMPLE)]
    pop, push = free.pop, free.append
    start = time.perf_counter_ns()
    for _ in range(n):
        obj = pop()
        obj.event_id = src.event_id
        obj.kind = src.kind
        obj.provider = src.provider
        obj.instrument = src.instrument
        obj.seq = src.seq
        obj.ingest_ts = src.ingest_ts
        obj.emit_ts = src.emit_ts
        obj.routing_version = src.routing_version
        obj.trace_id = src.trace_id
        obj.decision_id = src.decision_id
        obj.schema_version = src.schema_version
        obj.payload = src.payload
        obj.skipped = src.skipped
        push(obj)
    return time.perf_counter_ns() - start


def pooled_timer(*, debug: bool) -> Timer:
    """A timer of ``duplicate_nowait`` + ``recycle`` against a recycler in ``debug`` mode."""
    recycler = Recycler(debug=debug)
    pool = EventPool(Event, recycler=recycler, name=f"bench-{'debug' if debug else 'prod'}")
    src = sample_event()

    def time_pooled(n: int) -> int:
        duplicate, recycle = pool.duplicate_nowait, recycler.recycle
        start = time.perf_counter_ns()
        for _ in range(n):
            recycle(duplicate(src))
        return time.perf_counter_ns() - start

    return time_pooled
