"""The canonical event envelope, lent from pools and shared by fan-out duplicates."""

from __future__ import annotations

from typing import Final

import attrs

from meltica_trio._defaults import SCHEMA_VERSION
from meltica_trio.lifecycle import Pooled

from ._kind import Kind
from ._payloads import Payload

# Enum member lookup costs ~80 ns on CPython 3.11; the hot path reads a constant.
_BLANK_KIND: Final = Kind.TRADE


@attrs.define(eq=False, kw_only=True)
class Event(Pooled):
    """One event on the pipeline: a small mutable envelope around an immutable payload.

    Inside the pipeline envelopes are lent by an :class:`~meltica_trio.EventPool` and go
    back through the :class:`~meltica_trio.Recycler`; a fan-out duplicate is another
    envelope pointing at the same payload. Equality is identity: compare payloads
    (which are values) or :meth:`as_tuple` to compare contents.

    Attributes:
        event_id: unique within the process that minted it.
        kind: what the event is; decides the payload class and delivery class.
        provider: the venue connection it came from (``"binance"``), or ``""``.
        instrument: canonical ``BASE-QUOTE`` (``"BTC-USDT"``), or ``""``.
        seq: the provider's sequence number, ``None`` where it has none.
        ingest_ts: when the event entered the process, ns (wall clock).
        emit_ts: when it was handed to consumers, ns (wall clock), 0 until then.
        routing_version: the routing table version it was routed under.
        trace_id: follows one flow across components and processes.
        decision_id: the strategy decision an order event belongs to.
        schema_version: the schema this event was built against.
        payload: the kind's immutable payload.
        skipped: events of this stream that this subscriber's lane dropped on
            overflow just before this one (SEQUENCED kinds); 0 almost always.
    """

    event_id: int = 0
    kind: Kind = Kind.TRADE
    provider: str = ""
    instrument: str = ""
    seq: int | None = None
    ingest_ts: int = 0
    emit_ts: int = 0
    routing_version: int = 0
    trace_id: str | None = None
    decision_id: str | None = None
    schema_version: int = SCHEMA_VERSION
    payload: Payload | None = None
    skipped: int = 0

    def as_tuple(self) -> tuple[object, ...]:
        """Every field in declaration order, for comparing contents."""
        return (
            self.event_id,
            self.kind,
            self.provider,
            self.instrument,
            self.seq,
            self.ingest_ts,
            self.emit_ts,
            self.routing_version,
            self.trace_id,
            self.decision_id,
            self.schema_version,
            self.payload,
            self.skipped,
        )

    # Written out field by field on purpose: this is the fan-out hot path, and a
    # loop over attrs.fields() costs three times as much. A test checks that both
    # methods cover every field.
    def _copy_from(self, other: Event) -> None:
        self.event_id = other.event_id
        self.kind = other.kind
        self.provider = other.provider
        self.instrument = other.instrument
        self.seq = other.seq
        self.ingest_ts = other.ingest_ts
        self.emit_ts = other.emit_ts
        self.routing_version = other.routing_version
        self.trace_id = other.trace_id
        self.decision_id = other.decision_id
        self.schema_version = other.schema_version
        self.payload = other.payload
        self.skipped = other.skipped

    def _reset(self) -> None:
        self.event_id = 0
        self.kind = _BLANK_KIND
        self.provider = ""
        self.instrument = ""
        self.seq = None
        self.ingest_ts = 0
        self.emit_ts = 0
        self.routing_version = 0
        self.trace_id = None
        self.decision_id = None
        self.schema_version = SCHEMA_VERSION
        self.payload = None
        self.skipped = 0
