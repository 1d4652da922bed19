"""The venue-specific part of a provider: what to connect to, say and parse (sans-I/O).

The runtime (:func:`~meltica_trio.providers.serve_provider`) is the same for every
venue; a :class:`VenueAdapter` tells it the rest, without doing any I/O itself::

    stream_url()              where to connect
    subscribe_messages()      what to send once connected
    text_message(raw)         the venue's plain-text frames ("pong"), else None
    parse(doc)                a decoded JSON frame -> parsed records
    snapshot_plan(instr)      how to get a fresh book: RestSnapshot or Resubscribe
    heartbeat                 when to ping and when a quiet connection is dead
    max_connection_age        rotate before the venue's connection lifetime ends

One adapter per venue: ``binance.BinanceAdapter``, ``okx.OkxAdapter``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeAlias

import attrs

from ._assembler import SyncRules
from ._parsed import DepthSnapshot, VenueMessage


@attrs.frozen(kw_only=True)
class Heartbeat:
    """How a connection proves it is alive.

    Attributes:
        ping: a text message to send when the connection has been quiet for
            ``ping_after`` seconds (OKX ``"ping"``), or ``None`` to never send one.
        ping_after: quiet seconds before the ping.
        dead_after: quiet seconds (since the last message received) after which the
            connection is considered dead and replaced.
    """

    ping: str | None
    ping_after: float
    dead_after: float


@attrs.frozen
class RestSnapshot:
    """Fetch a book with a REST GET and parse the body.

    Attributes:
        url: the full URL, query string included.
        parse: turns the decoded JSON body into the snapshot.
    """

    url: str
    parse: Callable[[object], DepthSnapshot]


@attrs.frozen
class Resubscribe:
    """Ask the venue to push the book again by resubscribing its channel.

    Attributes:
        messages: text messages to send, in order (unsubscribe, then subscribe).
    """

    messages: tuple[str, ...]


SnapshotPlan: TypeAlias = RestSnapshot | Resubscribe
"""How a venue delivers a fresh book."""


class VenueAdapter(Protocol):
    """The venue-specific part of a provider; see the module docstring."""

    @property
    def provider(self) -> str:
        """The name events are published under (``"binance"``)."""
        ...

    @property
    def rules(self) -> SyncRules:
        """The book synchronisation procedure of the venue."""
        ...

    @property
    def instruments(self) -> tuple[str, ...]:
        """The canonical instruments of this connection."""
        ...

    @property
    def heartbeat(self) -> Heartbeat:
        """When to ping and when a quiet connection is dead."""
        ...

    @property
    def max_connection_age(self) -> float | None:
        """Seconds after which the connection is replaced, or ``None``."""
        ...

    @property
    def subscription_pushes_snapshot(self) -> bool:
        """True when subscribing sends each book's snapshot (no request needed)."""
        ...

    def stream_url(self) -> str:
        """The WebSocket URL to connect to."""
        ...

    def subscribe_messages(self) -> list[str]:
        """Text messages to send once connected (may be empty)."""
        ...

    def text_message(self, raw: str | bytes) -> VenueMessage | None:
        """The record of a plain-text (non-JSON) frame the venue sends, else ``None``."""
        ...

    def parse(self, doc: object) -> list[VenueMessage]:
        """Parse one decoded JSON frame.

        Raises:
            DecodeError: not a frame of this venue.
        """
        ...

    def snapshot_plan(self, instrument: str) -> SnapshotPlan:
        """How to get a fresh book of ``instrument``."""
        ...
