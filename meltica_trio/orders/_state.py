"""The order state machine: what may follow what, with exact quantities.

::

    NEW ──► ACK ──► PARTIAL ──► FILLED
     │       │       │  ▲
     │       │       └──┘ (each further fill)
     │       ├──────────────► FILLED
     │       └──► CANCELLED | EXPIRED ◄── PARTIAL
     └──► REJECTED

``NEW`` is the gateway's own state (recorded, not yet acknowledged); the venue's
first word makes it ``ACK``. The four ends are absorbing. At every step
``filled + remaining == quantity``, computed with exact decimals on the decimal
text the venue sent, and ``filled`` never goes down.

:class:`OrderTracker` applies venue updates. Venues repeat themselves (a REST answer
and a stream event describe the same change; a frame is replayed; events arrive
late), so an update that brings nothing new is *stale* and ignored, while one that
contradicts what is known raises :class:`InvalidTransitionError` and changes nothing.
An order the venue reports filled or cancelled before its ACK was seen gets the ACK
first, so every order that lived reports ``ACK`` exactly once.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal
from typing import Final

import attrs

from meltica_trio.events import OrderState

from ._client import VenueUpdate
from ._errors import InvalidTransitionError

_NEW, _ACK, _PARTIAL = OrderState.NEW, OrderState.ACK, OrderState.PARTIAL
_FILLED, _CANCELLED = OrderState.FILLED, OrderState.CANCELLED
_REJECTED, _EXPIRED = OrderState.REJECTED, OrderState.EXPIRED

TERMINAL: Final = frozenset({_FILLED, _CANCELLED, _REJECTED, _EXPIRED})
"""States an order never leaves."""

NEXT: Final = {
    _NEW: frozenset({_ACK, _REJECTED}),
    _ACK: frozenset({_PARTIAL, _FILLED, _CANCELLED, _EXPIRED}),
    _PARTIAL: frozenset({_PARTIAL, _FILLED, _CANCELLED, _EXPIRED}),
    _FILLED: frozenset[OrderState](),
    _CANCELLED: frozenset[OrderState](),
    _REJECTED: frozenset[OrderState](),
    _EXPIRED: frozenset[OrderState](),
}
"""The allowed transitions (PARTIAL -> PARTIAL needs more filled)."""

_RANK: Final = {_NEW: 0, _ACK: 1, _PARTIAL: 2} | dict.fromkeys(TERMINAL, 3)

_DECIMAL_TEXT: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")

# Precision far beyond any venue's; Inexact is trapped, so arithmetic is exact or raises.
_EXACT: Final = decimal.Context(
    prec=120, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow]
)


def parse_decimal(text: object) -> Decimal:
    """Exact decimal text (``"0.00123400"``; no sign, exponent or spaces) to a Decimal.

    Raises:
        ValueError: ``text`` is not such a string.
    """
    if not isinstance(text, str) or not _DECIMAL_TEXT.fullmatch(text):
        raise ValueError(f"{text!r} is not a plain decimal number")
    return Decimal(text)


def format_decimal(value: Decimal) -> str:
    """A Decimal as plain text (never exponent notation)."""
    return format(value, "f")


def transition_problem(
    state: OrderState, filled: Decimal, quantity: Decimal, target: OrderState, new_filled: Decimal
) -> str | None:
    """Why ``state`` (with ``filled``) may not become ``target`` (with ``new_filled``)."""
    if target not in NEXT[state]:
        if state in TERMINAL:
            return f"the order is already {state}"
        return f"{target} cannot follow {state}"
    if new_filled < filled:
        return f"filled would go down from {filled} to {new_filled}"
    if new_filled > quantity:
        return f"filled {new_filled} exceeds the quantity {quantity}"
    if target is _PARTIAL and not filled < new_filled < quantity:
        return f"a partial fill must add to {filled} and stay below {quantity}"
    if target is _FILLED and new_filled != quantity:
        return f"filled is {new_filled}, not the quantity {quantity}"
    if target in (_ACK, _REJECTED) and new_filled:
        return f"{target} with {new_filled} filled"
    if target in (_CANCELLED, _EXPIRED) and new_filled == quantity:
        return "a fully filled order is FILLED"
    return None


@attrs.frozen(kw_only=True)
class Transition:
    """One step of an order's life, as reported to its owner.

    Attributes:
        seq: 1 for the order's first transition, then 2, 3...
        state: the state entered.
        filled: cumulative filled quantity after the step.
        remaining: ``quantity - filled``.
        venue_order_id: the venue's id, once known.
        last_fill_price: price of the step's fill (the venue's last fill price).
        last_fill_size: size filled by this step (``filled`` minus the previous
            ``filled``), so the sizes of an order's reports add up to its ``filled``.
        reason: the venue's or the gateway's reason (rejections, expiries).
    """

    seq: int
    state: OrderState
    filled: str
    remaining: str
    venue_order_id: str | None = None
    last_fill_price: str | None = None
    last_fill_size: str | None = None
    reason: str | None = None


@attrs.define(eq=False)
class OrderTracker:
    """The state of one order; see the module docstring for the rules.

    Build one with :meth:`open`.
    """

    client_order_id: str
    quantity: Decimal
    state: OrderState = _NEW
    filled: Decimal = attrs.field(default=Decimal(0))
    venue_order_id: str | None = None
    transitions: int = 0
    _seen: set[str] = attrs.field(factory=set)

    @classmethod
    def open(cls, client_order_id: str, quantity: str) -> OrderTracker:
        """A NEW order of ``quantity`` (decimal text, above zero).

        Raises:
            ValueError: ``quantity`` is not a positive plain decimal.
        """
        amount = parse_decimal(quantity)
        if not amount:
            raise ValueError(f"quantity {quantity!r} is not above zero")
        # quantity - quantity is a zero with the quantity's scale: "1.50" -> "0.00".
        return cls(client_order_id, amount, filled=_EXACT.subtract(amount, amount))

    @property
    def remaining(self) -> Decimal:
        """``quantity - filled``, exactly."""
        return _EXACT.subtract(self.quantity, self.filled)

    @property
    def terminal(self) -> bool:
        """True once the order has ended."""
        return self.state in TERMINAL

    def transition(
        self,
        target: OrderState,
        *,
        filled: Decimal | None = None,
        venue_order_id: str | None = None,
        last_fill_price: str | None = None,
        reason: str | None = None,
    ) -> Transition:
        """Move to ``target`` (cumulative ``filled``, unchanged if None).

        Raises:
            InvalidTransitionError: the table or the quantities forbid it; the
                tracker is unchanged.
        """
        new_filled = self.filled if filled is None else filled
        problem = transition_problem(self.state, self.filled, self.quantity, target, new_filled)
        if problem is not None:
            raise InvalidTransitionError(self.client_order_id, self.state, target, problem)
        size = _EXACT.subtract(new_filled, self.filled)
        self.state, self.filled = target, new_filled
        self.venue_order_id = venue_order_id or self.venue_order_id
        self.transitions += 1
        return Transition(
            seq=self.transitions,
            state=target,
            filled=format_decimal(new_filled),
            remaining=format_decimal(self.remaining),
            venue_order_id=self.venue_order_id,
            last_fill_price=last_fill_price if size else None,
            last_fill_size=format_decimal(size) if size else None,
            reason=reason,
        )

    def advance(self, update: VenueUpdate) -> tuple[Transition, ...]:
        """Apply a venue update: the transitions it causes, ``()`` if stale or seen.

        Raises:
            InvalidTransitionError: the update contradicts the order's state; the
                tracker is unchanged (and the update not marked seen).
        """
        if update.exec_id in self._seen:
            return ()
        try:
            filled = parse_decimal(update.filled)
        except ValueError as exc:
            raise InvalidTransitionError(
                self.client_order_id, self.state, update.state, str(exc)
            ) from None
        if self._stale(update.state, filled):
            self._seen.add(update.exec_id)
            return ()
        implied_ack = self.state is _NEW and update.state not in NEXT[_NEW]
        if implied_ack:
            zero = self.filled
            problem = transition_problem(_ACK, zero, self.quantity, update.state, filled)
            if problem is not None:
                raise InvalidTransitionError(self.client_order_id, _ACK, update.state, problem)
        steps = (
            [self.transition(_ACK, venue_order_id=update.venue_order_id)] if implied_ack else []
        )
        steps.append(
            self.transition(
                update.state,
                filled=filled,
                venue_order_id=update.venue_order_id,
                last_fill_price=update.last_fill_price,
                reason=update.reason,
            )
        )
        self._seen.add(update.exec_id)
        return tuple(steps)

    def _stale(self, target: OrderState, filled: Decimal) -> bool:
        """True for an update that says nothing the tracker does not know."""
        if target is _NEW:
            return True
        if target is self.state and filled == self.filled:
            return True
        if target in TERMINAL:
            return False
        return filled < self.filled or (
            filled == self.filled and _RANK[target] <= _RANK[self.state]
        )
