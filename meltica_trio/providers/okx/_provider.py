"""OKX v5 public: what the provider runtime needs to know about the venue (sans-I/O).

Channels are subscribed with one ``{"op": "subscribe", "args": [...]}`` message after
connecting, and a ``books`` subscription pushes the book's snapshot, so a fresh book is
had by unsubscribing and subscribing that instrument's ``books`` channel again. OKX
closes a connection after 30 s without traffic: the runtime sends the text ``ping``
after ``OKX_PING_AFTER`` quiet seconds and expects ``pong`` before ``OKX_DEAD_AFTER``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs
import orjson

from meltica_trio.providers._adapter import Heartbeat, Resubscribe
from meltica_trio.providers._assembler import SyncRules
from meltica_trio.providers._parsed import ControlFrame, VenueMessage

from ._parse import parse_frame

OKX_WS_URL: Final = "wss://ws.okx.com:8443/ws/v5/public"
"""OKX v5 public WebSocket."""

OKX_CHANNELS: Final = ("books", "trades", "tickers")
"""Channels subscribed per instrument (the set of the shared capture)."""

OKX_PING_AFTER: Final = 20.0
"""Quiet seconds before sending ``ping``: OKX drops a connection silent for 30 s."""

OKX_DEAD_AFTER: Final = 30.0
"""Quiet seconds (10 s after the ping) after which the connection is replaced."""

OKX_HEARTBEAT: Final = Heartbeat(ping="ping", ping_after=OKX_PING_AFTER, dead_after=OKX_DEAD_AFTER)
"""OKX's keep-alive: text ``ping`` / ``pong``."""

_BOOK_CHANNELS: Final = frozenset({"books", "books5", "bbo-tbt", "books-l2-tbt", "books50-l2-tbt"})


def _instruments(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _op(op: str, args: list[dict[str, str]]) -> str:
    return orjson.dumps({"op": op, "args": args}).decode()


@attrs.frozen
class OkxAdapter:
    """OKX v5 public market data for the runtime; see the module docstring.

    Args:
        instruments: OKX instrument ids (``"BTC-USDT"``, ``"UNI-USD-SWAP"``).
        ws_url: the public WebSocket URL (a local venue in tests).
        channels: channels subscribed per instrument; one of them a books channel.
        heartbeat: ping and dead-connection timings.
        max_connection_age: seconds before a connection is replaced (``None``: never).
        provider: the name events are published under.

    Raises:
        ValueError: no instruments, or no books channel among ``channels``.
    """

    instruments: tuple[str, ...] = attrs.field(converter=_instruments)
    ws_url: str = attrs.field(default=OKX_WS_URL, kw_only=True)
    channels: tuple[str, ...] = attrs.field(default=OKX_CHANNELS, kw_only=True)
    heartbeat: Heartbeat = attrs.field(default=OKX_HEARTBEAT, kw_only=True)
    max_connection_age: float | None = attrs.field(default=None, kw_only=True)
    provider: str = attrs.field(default="okx", kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not self.instruments:
            raise ValueError("an OKX connection needs at least one instrument")
        if not _BOOK_CHANNELS.intersection(self.channels):
            raise ValueError(f"no books channel among {self.channels}")

    @property
    def rules(self) -> SyncRules:
        """OKX's procedure: pushed snapshots, ``seqId``/``prevSeqId``, checksums."""
        return SyncRules.OKX

    @property
    def subscription_pushes_snapshot(self) -> bool:
        """True: subscribing ``books`` pushes the snapshot."""
        return True

    @property
    def book_channel(self) -> str:
        """The books channel subscribed."""
        return next(c for c in self.channels if c in _BOOK_CHANNELS)

    def stream_url(self) -> str:
        """The public WebSocket URL."""
        return self.ws_url

    def subscribe_messages(self) -> list[str]:
        """One subscribe message for every channel of every instrument."""
        args = [{"channel": c, "instId": i} for c in self.channels for i in self.instruments]
        return [_op("subscribe", args)]

    def text_message(self, raw: str | bytes) -> VenueMessage | None:
        """``pong`` (the answer to ``ping``)."""
        if raw in ("pong", b"pong"):
            return ControlFrame(event="pong")
        return None

    def parse(self, doc: object) -> list[VenueMessage]:
        """Parse a push or event frame (see ``okx.parse_frame``)."""
        return parse_frame(doc)

    def snapshot_plan(self, instrument: str) -> Resubscribe:
        """Unsubscribe and resubscribe the instrument's books channel."""
        args = [{"channel": self.book_channel, "instId": instrument}]
        return Resubscribe((_op("unsubscribe", args), _op("subscribe", args)))
