"""The exception tree of meltica-trio.

Every error the library raises on purpose derives from :class:`MelticaError`, and
where an error keeps the contract of a standard exception it derives from that too,
so ``except ValueError`` keeps working for callers who do not know this library::

    MelticaError
    ├── ConfigError(MelticaError, ValueError)       a configuration value or file is wrong
    ├── DecodeError(MelticaError, ValueError)       bytes that are not a valid event
    ├── PipelineClosedError(..., RuntimeError)      publish/subscribe after the block ended
    ├── ConsumerExistsError(..., ValueError)        a consumer id taken by another function
    ├── CommandRefusedError                         the control plane refused a command
    ├── ProviderError                               a venue connection failed
    │   ├── TransportError(..., ConnectionError)    a socket or HTTP request failed
    │   └── ProviderGaveUpError                     reconnecting stopped after max attempts
    ├── InvalidTransitionError(..., ValueError)     an order update the state machine refuses
    ├── LedgerFullError(..., RuntimeError)          the idempotency ledger is full
    ├── VenueError                                  a venue's order API failed
    │   ├── VenueUnavailableError                   timeout, 5xx, no answer: outcome UNKNOWN
    │   └── VenueRejectedError                      the venue answered "no"
    │       ├── UnknownOrderError(..., KeyError)    it has no such order
    │       └── DuplicateOrderError                 it already has that client order id
    └── LifecycleError(MelticaError, RuntimeError)  misuse of a pooled object
        ├── PoolExhausted                           no object within the deadline
        ├── UseAfterRecycleError                    touched after going back (debug)
        ├── DoublePutError                          recycled twice, or by a stale holder
        └── ForeignObjectError(..., TypeError)      not from any pool of this recycler

``VenueUnavailableError`` is the one to be careful with: the request may or may not
have reached the matching engine, so the order gateway queries before it resends.

Errors carry what went wrong as attributes (``err.pool``, ``err.acquired_at``,
``err.reason``...) so that handlers and logs need not parse messages.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CommandRefusedError",
    "ConfigError",
    "ConsumerExistsError",
    "DecodeError",
    "DoublePutError",
    "DuplicateOrderError",
    "ForeignObjectError",
    "InvalidTransitionError",
    "LedgerFullError",
    "LifecycleError",
    "MelticaError",
    "PipelineClosedError",
    "PoolExhausted",
    "ProviderError",
    "ProviderGaveUpError",
    "TransportError",
    "UnknownOrderError",
    "UseAfterRecycleError",
    "VenueError",
    "VenueRejectedError",
    "VenueUnavailableError",
]


class MelticaError(Exception):
    """Root of every error meltica-trio raises on purpose."""


class ConfigError(MelticaError, ValueError):
    """A configuration value or file is wrong.

    Attributes:
        key: the offending key (or file).
        reason: what is wrong with it.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


class PipelineClosedError(MelticaError, RuntimeError):
    """The pipeline's ``async with`` block has ended; it takes no more work."""


class ConsumerExistsError(MelticaError, ValueError):
    """A consumer id is already subscribed with a different function.

    Attributes:
        consumer_id: the id in use.
    """

    def __init__(self, consumer_id: str) -> None:
        self.consumer_id = consumer_id
        super().__init__(f"consumer {consumer_id!r} is already subscribed with another function")


class CommandRefusedError(MelticaError):
    """A convenience method's command was refused by the control plane.

    Attributes:
        command: the command's name (``"subscribe"``).
        reason: why it was refused.
    """

    def __init__(self, command: str, reason: str) -> None:
        self.command = command
        self.reason = reason
        super().__init__(f"{command} refused: {reason}")


class DecodeError(MelticaError, ValueError):
    """Input could not be decoded into a canonical event.

    Attributes:
        reason: what was wrong, in words.
        path: where in the document it was wrong (``"payload.bids[3]"``), or ``""``.
    """

    def __init__(self, reason: str, path: str = "") -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)


class LifecycleError(MelticaError, RuntimeError):
    """A pooled object was used against the lease rules (see ``docs/explanation``)."""


class PoolExhausted(LifecycleError):
    """A pool had no free object before the acquire deadline and its policy is to raise.

    Attributes:
        pool: the pool's name.
        capacity: how many objects the pool may lend at once.
        waited: seconds spent waiting on the trio clock before giving up.
    """

    def __init__(self, pool: str, capacity: int, waited: float) -> None:
        self.pool = pool
        self.capacity = capacity
        self.waited = waited
        super().__init__(
            f"pool {pool!r} lent all {capacity} objects and none came back within {waited:g}s"
        )


def _sites(label: str, sites: Sequence[str]) -> str:
    return f"{label} at {' <- '.join(sites) if sites else '(site not recorded)'}"


class _LeaseMisuse(LifecycleError):
    """Shared shape of the errors that point at a lease's history."""

    def __init__(
        self,
        message: str,
        *,
        pool: str,
        generation: int,
        acquired_at: Sequence[str],
        recycled_at: Sequence[str],
    ) -> None:
        self.pool = pool
        self.generation = generation
        self.acquired_at = tuple(acquired_at)
        self.recycled_at = tuple(recycled_at)
        super().__init__(
            f"{message} (pool {pool!r}, lease #{generation}; "
            f"{_sites('acquired', acquired_at)}; {_sites('recycled', recycled_at)})"
        )


class UseAfterRecycleError(_LeaseMisuse):
    """An attribute of a recycled object was read or written (debug mode only).

    Attributes:
        attribute: the attribute that was touched.
        pool, generation, acquired_at, recycled_at: the lease's history.
    """

    def __init__(
        self,
        attribute: str,
        *,
        pool: str,
        generation: int,
        acquired_at: Sequence[str],
        recycled_at: Sequence[str],
    ) -> None:
        self.attribute = attribute
        super().__init__(
            f"attribute {attribute!r} used after the object was recycled",
            pool=pool,
            generation=generation,
            acquired_at=acquired_at,
            recycled_at=recycled_at,
        )


class DoublePutError(_LeaseMisuse):
    """An object was recycled when its lease had already ended.

    Raised in debug mode. In production the put is refused and counted instead, so
    that the pool is never corrupted by a buggy holder.

    Attributes:
        pool, generation, acquired_at, recycled_at: the ended lease's history;
            ``recycled_at`` names the first, legitimate recycle.
    """

    def __init__(
        self,
        *,
        pool: str,
        generation: int,
        acquired_at: Sequence[str],
        recycled_at: Sequence[str],
    ) -> None:
        super().__init__(
            "object recycled twice, or by a holder whose lease had ended",
            pool=pool,
            generation=generation,
            acquired_at=acquired_at,
            recycled_at=recycled_at,
        )


class ForeignObjectError(LifecycleError, TypeError):
    """``Recycler.recycle`` was given an object that no pool of that recycler lent.

    Attributes:
        obj_type: the type name of the object.
    """

    def __init__(self, obj_type: str, detail: str) -> None:
        self.obj_type = obj_type
        super().__init__(f"cannot recycle {obj_type}: {detail}")


class ProviderError(MelticaError):
    """Root of the errors of venue connections."""


class TransportError(ProviderError, ConnectionError):
    """A WebSocket or HTTP request failed (refused, closed, timed out, too big).

    Attributes:
        url: the WebSocket or REST URL.
        reason: what happened, in words.
        code: the WebSocket close code, when the peer closed the connection.
    """

    def __init__(self, url: str, reason: str, code: int | None = None) -> None:
        self.url = url
        self.reason = reason
        self.code = code
        super().__init__(f"{url}: {reason}")


class ProviderGaveUpError(ProviderError):
    """A provider stopped reconnecting after its configured maximum of attempts.

    Every book of the provider was published STALE before this was raised.

    Attributes:
        provider: the provider's name.
        attempts: consecutive failed connection attempts.
        reason: the last failure.
    """

    def __init__(self, provider: str, attempts: int, reason: str) -> None:
        self.provider = provider
        self.attempts = attempts
        self.reason = reason
        super().__init__(f"{provider}: gave up after {attempts} attempts: {reason}")


class InvalidTransitionError(MelticaError, ValueError):
    """The order state machine refused an update.

    Attributes:
        client_order_id: the order's id.
        current: its state before the update (an ``OrderState`` value).
        target: the state the update asked for.
        reason: why the transition is not allowed.
    """

    def __init__(self, client_order_id: str, current: str, target: str, reason: str) -> None:
        self.client_order_id = client_order_id
        self.current = current
        self.target = target
        self.reason = reason
        super().__init__(f"order {client_order_id!r}: {current} -> {target} refused: {reason}")


class LedgerFullError(MelticaError, RuntimeError):
    """The idempotency ledger is full of unexpired entries and takes no new order.

    Attributes:
        max_entries: the ledger's bound.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        super().__init__(f"the idempotency ledger holds {max_entries} unexpired orders")


class VenueError(MelticaError):
    """A venue's order API failed.

    Attributes:
        provider: the venue connection (``"binance"``).
        reason: what went wrong, in words.
        status: the HTTP status, when there was a response.
        code: the venue's error code (Binance ``-2013``), when it sent one.
    """

    def __init__(
        self, provider: str, reason: str, *, status: int | None = None, code: int | None = None
    ) -> None:
        self.provider = provider
        self.reason = reason
        self.status = status
        self.code = code
        where = f" (HTTP {status}" + (f", code {code})" if code is not None else ")")
        super().__init__(f"{provider}: {reason}" + (where if status is not None else ""))


class VenueUnavailableError(VenueError):
    """No usable answer (timeout, connection error, 5xx): the request's outcome is unknown."""


class VenueRejectedError(VenueError):
    """The venue answered and refused the request; nothing changed there."""


class UnknownOrderError(VenueRejectedError, KeyError):
    """The venue has no order with that client order id (Binance -2013 / -2011)."""

    def __str__(self) -> str:
        # KeyError would quote the message; keep it readable.
        return VenueRejectedError.__str__(self)


class DuplicateOrderError(VenueRejectedError):
    """The venue already has an order with that client order id (Binance -2010)."""
