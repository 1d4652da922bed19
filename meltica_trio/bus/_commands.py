"""Control commands: frozen values, each owned by one component of the pipeline.

Every command names the consumer that asked (``consumer_id``) and carries a
``command_id`` (generated when not given) that its ControlAck and ControlResult
repeat, so a requester can match answers to questions.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Final, TypeAlias

import attrs

from meltica_trio.events import Kind, Side

_INSTRUMENT: Final = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)+")
"""Canonical instruments: ``BASE-QUOTE``, optionally with venue parts (``BTC-USD-SWAP``)."""


def _next_command_id() -> str:
    return uuid.uuid4().hex


def frozen_or_all(values: Iterable[str] | str | None) -> frozenset[str] | None:
    """A filter's values frozen; None (every value) stays None, a lone string is one value."""
    return None if values is None else frozen_strings(values)


def frozen_strings(values: Iterable[str] | str) -> frozenset[str]:
    """Strings frozen; a lone string is one value, not a set of its letters."""
    return frozenset((values,) if isinstance(values, str) else values)


def kinds_or_all(values: Iterable[Kind | str] | Kind | str | None) -> frozenset[Kind] | None:
    """Kinds (or their wire names) frozen; None (every kind) stays None.

    Raises:
        ValueError: a name that is not a kind.
    """
    if values is None:
        return None
    items = (values,) if isinstance(values, str) else values
    return frozenset(Kind(value) for value in items)


def instrument_problem(instrument: object) -> str | None:
    """Why ``instrument`` is not a canonical instrument name, or None if it is."""
    if not isinstance(instrument, str) or not _INSTRUMENT.fullmatch(instrument):
        return f"{instrument!r} is not a canonical instrument (BASE-QUOTE, upper case)"
    return None


@attrs.frozen(kw_only=True)
class Subscribe:
    """Replace the consumer's filters; ``None`` in a filter means every value."""

    consumer_id: str
    instruments: frozenset[str] | None = attrs.field(default=None, converter=frozen_or_all)
    kinds: frozenset[Kind] | None = attrs.field(default=None, converter=kinds_or_all)
    providers: frozenset[str] | None = attrs.field(default=None, converter=frozen_or_all)
    command_id: str = attrs.field(factory=_next_command_id)


@attrs.frozen(kw_only=True)
class Unsubscribe:
    """Stop routing anything to the consumer (its function stays registered)."""

    consumer_id: str
    command_id: str = attrs.field(factory=_next_command_id)


@attrs.frozen(kw_only=True)
class SubscribeMerged:
    """Add the merged view of ``instrument`` (from merge rule ``rule``) to the consumer."""

    consumer_id: str
    instrument: str
    rule: str | None = None
    command_id: str = attrs.field(factory=_next_command_id)


@attrs.frozen(kw_only=True)
class StageRouting:
    """Stage subscription changes as the next routing version, applied by FlipRouting."""

    consumer_id: str
    changes: tuple[Subscribe | Unsubscribe, ...]
    command_id: str = attrs.field(factory=_next_command_id)


@attrs.frozen(kw_only=True)
class FlipRouting:
    """Make the staged routing version current, atomically."""

    consumer_id: str
    command_id: str = attrs.field(factory=_next_command_id)


@attrs.frozen(kw_only=True)
class SetTradingSwitch:
    """Turn the consumer's trading on or off (it starts off: fail closed)."""

    consumer_id: str
    enabled: bool
    command_id: str = attrs.field(factory=_next_command_id)


@attrs.frozen(kw_only=True)
class ConfigureMerge:
    """Add or replace a merge rule of the orchestrator.

    Attributes:
        name: the rule's name (what SubscribeMerged refers to).
        instrument: the instrument merged across venues.
        kind: the fragment kind merged (TICKER or BOOK_SNAPSHOT).
        providers: the venues every window must hear from.
        window: seconds a window stays open.
        max_count: fragments that close a window early.
    """

    consumer_id: str
    name: str
    instrument: str
    kind: Kind = attrs.field(converter=Kind)
    providers: frozenset[str] = attrs.field(converter=frozen_strings)
    window: float
    max_count: int
    command_id: str = attrs.field(factory=_next_command_id)


@attrs.frozen(kw_only=True)
class SubmitOrder:
    """Ask the order gateway for a new order, idempotent by (consumer_id, client_order_id)."""

    consumer_id: str
    client_order_id: str
    provider: str
    instrument: str
    side: Side = attrs.field(converter=Side)
    quantity: str
    price: str | None = None
    decision_id: str | None = None
    trace_id: str | None = None
    command_id: str = attrs.field(factory=_next_command_id)


@attrs.frozen(kw_only=True)
class CancelOrder:
    """Ask the order gateway to cancel one of the consumer's orders."""

    consumer_id: str
    client_order_id: str
    command_id: str = attrs.field(factory=_next_command_id)


@attrs.frozen(kw_only=True)
class QueryOrder:
    """Ask the order gateway for the state of one of the consumer's orders."""

    consumer_id: str
    client_order_id: str
    command_id: str = attrs.field(factory=_next_command_id)


Command: TypeAlias = (
    Subscribe
    | Unsubscribe
    | SubscribeMerged
    | StageRouting
    | FlipRouting
    | SetTradingSwitch
    | ConfigureMerge
    | SubmitOrder
    | CancelOrder
    | QueryOrder
)
"""Every control command."""

COMMAND_NAMES: Final = {
    Subscribe: "subscribe",
    Unsubscribe: "unsubscribe",
    SubscribeMerged: "subscribe_merged",
    StageRouting: "stage_routing",
    FlipRouting: "flip_routing",
    SetTradingSwitch: "set_trading_switch",
    ConfigureMerge: "configure_merge",
    SubmitOrder: "submit_order",
    CancelOrder: "cancel_order",
    QueryOrder: "query_order",
}
"""The name each command has in ControlAck and ControlResult payloads."""
