"""Transports for tests: a scripted fake and a capture replay.

Both satisfy ``meltica_trio.providers.Transport``, so a provider runs over them with
its real parsing, book and reconnect code and no network::

    fake = FakeTransport()
    nursery.start_soon(serve_provider, pipe, OkxAdapter(["BTC-USDT"]), fake)
    conn = await fake.accept()                 # the provider connected
    await conn.wait_sent(1)                    # ... and subscribed
    await conn.send({"arg": {...}, "action": "snapshot", "data": [...]})
    conn.drop("venue restarted")               # its next get_message fails

    replay = ReplayTransport.from_capture("binance-spot-capture.jsonl")
    nursery.start_soon(serve_provider, pipe, adapter, replay)
    await replay.finished.wait()               # every frame has been read

A replayed ``ws`` record whose ``data`` is a string is sent as that raw text (the
recorder writes non-JSON frames that way); anything else is sent as its JSON.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlsplit

import attrs
import orjson
import trio

from meltica_trio.providers import CaptureKind, CaptureRecord, read_capture
from meltica_trio.providers._errors import TransportError
from meltica_trio.providers._transport import WebSocket

FAKE_QUEUE_SIZE: Final = 64
"""Frames a fake connection holds for the provider before ``FakeConnection.send`` waits."""

FAKE_PENDING_CONNECTIONS: Final = 8
"""Connections opened but not yet accepted by the test before opening waits."""

NOT_FOUND: Final = (404, {"code": -1, "msg": "not in the fake or the capture"})
"""What a REST request nobody prepared an answer for gets."""

RestHandler = Callable[[str], Awaitable[tuple[int, object]]]
"""Answers a REST GET of a URL with (status, JSON body)."""


def _text(frame: object) -> str | bytes:
    if isinstance(frame, str | bytes):
        return frame
    return orjson.dumps(frame).decode()


def rest_key(url: str) -> tuple[str, str]:
    """(path, ``symbol`` query parameter) of a REST URL: the host does not matter."""
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query).get("symbol", [""])[0]


# -- the scripted fake ----------------------------------------------------------------


@attrs.define(eq=False)
class FakeConnection:
    """The venue's end of one fake WebSocket; the test drives it.

    Attributes:
        url: the URL the provider opened.
        sent: every text message the provider sent, in order.
        closed: the provider closed the connection.
    """

    url: str
    _to_client: trio.MemorySendChannel[str | bytes]
    _from_venue: trio.MemoryReceiveChannel[str | bytes]
    sent: list[str] = attrs.field(factory=list)
    closed: bool = False
    _reason: str = "connection closed by the venue"
    _changed: trio.Event = attrs.field(factory=trio.Event)

    async def send(self, frame: object) -> None:
        """Send one frame to the provider: ``str``/``bytes`` as they are, else as JSON.

        Raises:
            trio.BrokenResourceError: the provider has closed the connection.
        """
        await self._to_client.send(_text(frame))

    def drop(self, reason: str = "connection dropped by the venue") -> None:
        """Break the connection: frames already sent are read, then ``get_message`` fails."""
        self._reason = reason
        self._to_client.close()

    async def wait_sent(self, count: int) -> list[str]:
        """Wait until the provider has sent ``count`` messages in all; return them all."""
        while len(self.sent) < count:
            await self._changed.wait()
        return list(self.sent)

    async def wait_closed(self) -> None:
        """Wait until the provider has closed the connection."""
        while not self.closed:
            await self._changed.wait()

    def _touch(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # The provider's end:

    async def send_message(self, message: str) -> None:
        if self.closed:
            raise TransportError(self.url, "connection closed")
        self.sent.append(message)
        self._touch()

    async def get_message(self) -> str | bytes:
        try:
            return await self._from_venue.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise TransportError(self.url, self._reason) from None

    async def aclose(self) -> None:
        self.closed = True
        self._from_venue.close()
        self._touch()


@attrs.define(eq=False)
class FakeTransport:
    """A transport scripted by the test, connection by connection and frame by frame.

    Args:
        queue_size: frames a connection holds before ``FakeConnection.send`` waits.

    Attributes:
        opened: URLs the provider opened, refused ones included.
        open_times: ``trio.current_time()`` of each attempt (for backoff tests).
        rest_requests: URLs of REST requests, in order.
        rest_handler: answers REST requests not prepared with :meth:`add_rest`.
    """

    queue_size: int = FAKE_QUEUE_SIZE
    opened: list[str] = attrs.field(init=False, factory=list)
    open_times: list[float] = attrs.field(init=False, factory=list)
    rest_requests: list[str] = attrs.field(init=False, factory=list)
    rest_handler: RestHandler | None = attrs.field(default=None, kw_only=True)
    _refuse: int = attrs.field(init=False, default=0)
    _rest: dict[tuple[str, str], deque[tuple[int, object]]] = attrs.field(init=False, factory=dict)
    _accept_send: trio.MemorySendChannel[FakeConnection] = attrs.field(init=False)
    _accept_receive: trio.MemoryReceiveChannel[FakeConnection] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        channel = trio.open_memory_channel[FakeConnection](FAKE_PENDING_CONNECTIONS)
        self._accept_send, self._accept_receive = channel

    def refuse(self, count: int) -> None:
        """Refuse the next ``count`` connection attempts."""
        self._refuse = count

    async def accept(self) -> FakeConnection:
        """Wait for the provider to open a connection; the venue's end of it."""
        return await self._accept_receive.receive()

    def add_rest(self, url: str, body: object, status: int = 200) -> None:
        """Answer the next GET of ``url``'s path and symbol (any host) with ``body``.

        Answers queue per (path, symbol); the last one is repeated once alone.
        """
        self._rest.setdefault(rest_key(url), deque()).append((status, body))

    @asynccontextmanager
    async def open_websocket(self, url: str) -> AsyncIterator[WebSocket]:
        """Open a fake connection the test can :meth:`accept`."""
        self.opened.append(url)
        self.open_times.append(trio.current_time())
        if self._refuse > 0:
            self._refuse -= 1
            raise TransportError(url, "connection refused (scripted)")
        to_client, from_venue = trio.open_memory_channel[str | bytes](self.queue_size)
        conn = FakeConnection(url, to_client, from_venue)
        await self._accept_send.send(conn)
        try:
            yield conn
        finally:
            await conn.aclose()

    async def get_json(self, url: str) -> tuple[int, object]:
        """The prepared answer for ``url``, else ``rest_handler``'s, else 404."""
        self.rest_requests.append(url)
        answers = self._rest.get(rest_key(url))
        if answers:
            return answers.popleft() if len(answers) > 1 else answers[0]
        if self.rest_handler is not None:
            return await self.rest_handler(url)
        return NOT_FOUND


# -- the capture replay ---------------------------------------------------------------


def _as_records(records: Iterable[CaptureRecord]) -> tuple[CaptureRecord, ...]:
    return tuple(records)


@attrs.define(eq=False)
class _ReplaySocket:
    """One replayed connection: the ``ws`` records after one ``ws_open``."""

    replay: ReplayTransport
    url: str
    records: Sequence[tuple[int, CaptureRecord]]
    last: bool
    _next: int = 0
    _started: float = attrs.field(factory=trio.current_time)

    async def send_message(self, message: str) -> None:
        self.replay.sent.append(message)

    async def get_message(self) -> str | bytes:
        if self._next >= len(self.records):
            if self.last:
                self.replay.finish()
                await trio.sleep_forever()
            raise TransportError(self.url, "the capture's connection ended here")
        index, record = self.records[self._next]
        if self.replay.pace:
            first = self.records[0][1].t
            await trio.sleep_until(self._started + (record.t - first) / self.replay.speed)
        self._next += 1
        self.replay.advance(index)
        return _text(record.data)

    async def aclose(self) -> None:
        return None


@attrs.define(eq=False)
class ReplayTransport:
    """Serves a capture back: each connection opened replays the next ``ws_open``'s frames.

    Frames the provider sends are kept in ``sent`` and otherwise ignored. A REST GET
    is answered with the capture's ``rest`` records of the same path and ``symbol``
    (any host), in order, the last one repeated; each answer waits until the
    replayed frames have reached its place in the capture, so snapshots meet the
    diffs they met when recorded. The last connection stays open, silent, after its
    last frame (``finished`` is then set); earlier ones fail after theirs, as the
    recorded connection did, and the provider reconnects into the next.

    Args:
        records: the capture's records, in order.
        pace: wait between frames as long as the capture did (on the trio clock,
            so ``MockClock`` makes it instant); otherwise replay as fast as read.
        speed: with ``pace``, how many times faster than recorded.

    Attributes:
        finished: set once the last frame has been read.
        opened: URLs the provider opened.
        sent: messages the provider sent.
        rest_requests: URLs of REST requests.
    """

    records: tuple[CaptureRecord, ...] = attrs.field(converter=_as_records)
    pace: bool = attrs.field(default=False, kw_only=True)
    speed: float = attrs.field(default=1.0, kw_only=True)
    finished: trio.Event = attrs.field(init=False, factory=trio.Event)
    opened: list[str] = attrs.field(init=False, factory=list)
    sent: list[str] = attrs.field(init=False, factory=list)
    rest_requests: list[str] = attrs.field(init=False, factory=list)
    _segments: list[list[tuple[int, CaptureRecord]]] = attrs.field(init=False, factory=list)
    _rest: dict[tuple[str, str], list[tuple[int, object]]] = attrs.field(init=False, factory=dict)
    _served: dict[tuple[str, str], int] = attrs.field(init=False, factory=dict)
    _position: int = attrs.field(init=False, default=-1)
    _progress: trio.Event = attrs.field(init=False, factory=trio.Event)

    def __attrs_post_init__(self) -> None:
        for index, record in enumerate(self.records):
            if record.kind is CaptureKind.WS_OPEN or (
                record.kind is CaptureKind.WS and not self._segments
            ):
                self._segments.append([])
            if record.kind is CaptureKind.WS:
                self._segments[-1].append((index, record))
            elif record.kind is CaptureKind.REST:
                self._rest.setdefault(rest_key(record.url), []).append((index, record.data))

    @classmethod
    def from_capture(
        cls, path: str | Path, *, pace: bool = False, speed: float = 1.0
    ) -> ReplayTransport:
        """Read a capture file (blocking: from trio, call it in ``trio.to_thread``).

        Raises:
            DecodeError: a line is not a capture record.
            OSError: the file cannot be read.
        """
        return cls(read_capture(path), pace=pace, speed=speed)

    @classmethod
    def from_records(
        cls, records: Iterable[CaptureRecord], *, pace: bool = False
    ) -> ReplayTransport:
        """Replay records (e.g. edited ones)."""
        return cls(records, pace=pace)

    def finish(self) -> None:
        """The replay has delivered its last frame: pending REST answers go out."""
        self.finished.set()
        self._progress.set()

    def advance(self, index: int) -> None:
        """The replay has delivered the record at ``index``."""
        self._position = index
        self._progress.set()
        self._progress = trio.Event()

    @asynccontextmanager
    async def open_websocket(self, url: str) -> AsyncIterator[WebSocket]:
        """The next recorded connection.

        Raises:
            TransportError: the capture has no more connections.
        """
        self.opened.append(url)
        number = len(self.opened) - 1
        if number >= len(self._segments):
            raise TransportError(url, "the capture has no more connections")
        last = number == len(self._segments) - 1
        yield _ReplaySocket(self, url, self._segments[number], last)

    async def get_json(self, url: str) -> tuple[int, object]:
        """The capture's answer to this path and symbol, at its place in the capture."""
        self.rest_requests.append(url)
        key = rest_key(url)
        answers = self._rest.get(key)
        if not answers:
            return NOT_FOUND
        served = self._served.get(key, 0)
        index, body = answers[min(served, len(answers) - 1)]
        self._served[key] = served + 1
        while self._position < index and not self.finished.is_set():
            await self._progress.wait()
        return 200, body
