"""The provider runtime: one venue connection, its books, and everything it publishes.

:func:`serve_provider` (or :meth:`Provider.serve`) runs until cancelled::

    async with open_pipeline(cfg) as pipe, open_network_transport() as transport:
        adapter = BinanceAdapter(["BTC-USDT", "ETH-USDT"])
        provider = Provider(pipe, adapter, transport)
        await nursery.start(provider.serve)    # returns once subscribed

Each connection is a small nursery of tasks around one bounded inbox, so that every
book is touched, and every event published, by a single task in order::

    reader      get_message (heartbeat, size limit) -> inbox      owns a clone of the inbox
    snapshots   REST GET with retries -> inbox, or a resubscribe  one per book at most
    resyncs     the pipeline's gap reports -> inbox
    processor   inbox -> parse -> BookAssembler -> pipe.publish   the only publisher
    rotation    replaces the connection before the venue's limit

A lost connection marks every book STALE (a BookStatus event each), waits a capped,
jittered, exponential backoff and reconnects; the new connection subscribes again and
resyncs every book. Frames that do not parse and frames over the size limit are
counted and logged and the connection goes on. Nothing stops silently: with
``Backoff.max_attempts`` set, giving up publishes STALE for every book and raises
:class:`ProviderGaveUpError`; otherwise the provider retries forever.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from typing import Final, TypeAlias

import attrs
import orjson
import trio

from meltica_trio._errors import DecodeError
from meltica_trio.events import BookState, BookStatus, Kind, Payload
from meltica_trio.telemetry import log_fields

from ._adapter import RestSnapshot, Resubscribe, VenueAdapter
from ._assembler import BookAction, BookAssembler, Publish
from ._errors import ProviderGaveUpError, TransportError
from ._parsed import DepthDiff, DepthSnapshot, Parsed, VenueMessage
from ._provider_config import (
    LOG_EVERY,
    LOG_FIRST,
    EventSink,
    ProviderConfig,
    ProviderStatistics,
)
from ._transport import TOO_BIG, Transport, WebSocket

log = logging.getLogger(__name__)


@attrs.frozen
class _Frame:
    raw: str | bytes
    now: float


@attrs.frozen
class _Snapshot:
    instrument: str
    snapshot: DepthSnapshot


@attrs.frozen
class _Resync:
    instrument: str
    reason: str


_Item: TypeAlias = _Frame | _Snapshot | _Resync


@attrs.define(eq=False)
class _Session:
    """One connection's shared state; its tasks live in ``nursery``."""

    ws: WebSocket
    url: str
    nursery: trio.Nursery
    inbox: trio.MemorySendChannel[_Item]
    limiter: trio.CapacityLimiter
    inflight: set[str] = attrs.field(factory=set)
    error: TransportError | None = None
    healthy: bool = False

    def fail(self, exc: TransportError) -> None:
        """End the connection with ``exc`` (the first failure wins)."""
        if self.error is None:
            self.error = exc
        self.nursery.cancel_scope.cancel(reason=f"connection failed: {exc.reason}")


@attrs.define(eq=False)
class _Ready:
    task_status: trio.TaskStatus[None]
    done: bool = False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.task_status.started()


@attrs.define(eq=False)
class Provider:
    """One venue connection feeding a pipeline; see the module docstring.

    Args:
        pipe: where events go (a ``Pipeline``).
        adapter: the venue (``BinanceAdapter``, ``OkxAdapter``).
        transport: the network, a replay or a fake.
        config: runtime settings.
        rng: uniform draws in ``[0, 1)`` for backoff jitter (seed it in tests:
            ``random.Random(7).random``).
    """

    pipe: EventSink
    adapter: VenueAdapter
    transport: Transport
    config: ProviderConfig = attrs.field(factory=ProviderConfig, kw_only=True)
    rng: Callable[[], float] = attrs.field(factory=lambda: random.Random().random, kw_only=True)
    _books: dict[str, BookAssembler] = attrs.field(init=False)
    _counts: Counter[str] = attrs.field(init=False, factory=Counter)
    _pending: dict[str, str] = attrs.field(init=False, factory=dict)
    _wakeup: trio.Event = attrs.field(init=False, factory=trio.Event)
    _connected: bool = attrs.field(init=False, default=False)
    _books_started: bool = attrs.field(init=False, default=False)

    @_books.default
    def _make_books(self) -> dict[str, BookAssembler]:
        a, c = self.adapter, self.config
        return {
            i: BookAssembler(
                a.provider, i, a.rules, stale_after=c.stale_after, snapshot_depth=c.snapshot_depth
            )
            for i in a.instruments
        }

    @property
    def name(self) -> str:
        """The provider's name (events are published under it)."""
        return self.adapter.provider

    @property
    def _extra(self) -> dict[str, object]:
        """``extra=`` of the log lines about the connection as a whole."""
        return log_fields(provider=self.name)

    def book(self, instrument: str) -> BookAssembler:
        """The assembler of ``instrument`` (read it; the runtime drives it).

        Raises:
            KeyError: not an instrument of this provider.
        """
        return self._books[instrument]

    def statistics(self) -> ProviderStatistics:
        """The provider's counters now."""
        c = self._counts
        return ProviderStatistics(
            provider=self.name,
            connected=self._connected,
            books=tuple(book.statistics() for book in self._books.values()),
            **{name: c[name] for name in _COUNTERS},
        )

    # -- the connection loop ------------------------------------------------------

    async def serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect, subscribe, publish; reconnect on failure; run until cancelled.

        Calls ``task_status.started()`` once the first connection is subscribed.

        Raises:
            ProviderGaveUpError: ``config.reconnect.max_attempts`` consecutive
                attempts failed (every book was published STALE first).
            PipelineClosedError: the pipeline shut down under the provider.

        Cancellation:
            Safe at any point: the connection is closed (shielded, time-bounded) and
            nothing further is published.
        """
        self.pipe.declare_instruments(self.name, self.adapter.instruments)
        self.pipe.on_resync(self.name, self._on_resync)
        ready = _Ready(task_status)
        policy = self.config.reconnect
        failures = 0
        while True:
            error, healthy = await self._connection(ready)
            if error is None:
                self._counts["rotations"] += 1
                failures = 0
                log.info(
                    "%s: connection rotated before the venue's limit", self.name, extra=self._extra
                )
                continue
            failures = 1 if healthy else failures + 1
            await self._mark_all_stale(f"connection lost: {error.reason}")
            if policy.gives_up(failures):
                await self._give_up(failures, error.reason)
            delay = policy.delay(failures, self.rng)
            log.warning(
                "%s: %s; reconnect attempt %d in %.2fs",
                self.name,
                error.reason,
                failures,
                delay,
                extra=self._extra,
            )
            await trio.sleep(delay)

    async def _connection(self, ready: _Ready) -> tuple[TransportError | None, bool]:
        """One connection from open to close: (its failure or None if rotated, healthy)."""
        url = self.adapter.stream_url()
        self._counts["connect_attempts"] += 1
        healthy = False
        try:
            async with self.transport.open_websocket(url) as ws:
                session_error, healthy = await self._session(ws, url, ready)
        except TransportError as exc:
            return exc, healthy
        finally:
            self._connected = False
        return session_error, healthy

    async def _session(
        self, ws: WebSocket, url: str, ready: _Ready
    ) -> tuple[TransportError | None, bool]:
        self._counts["connects"] += 1
        self._counts["reconnects"] += self._books_started
        self._connected = True
        log.info("%s: connected to %.120s", self.name, url, extra=self._extra)
        for message in self.adapter.subscribe_messages():
            await ws.send_message(message)
        self._pending.clear()  # every book resyncs below anyway
        inbox, receive = trio.open_memory_channel[_Item](self.config.inbox_capacity)
        with inbox:
            async with trio.open_nursery() as nursery:
                limiter = trio.CapacityLimiter(self.config.max_concurrent_snapshots)
                session = _Session(ws, url, nursery, inbox, limiter)
                await self._start_books(session)
                ready()
                nursery.start_soon(self._process, session, receive)
                nursery.start_soon(self._forward_resyncs, inbox.clone())
                nursery.start_soon(self._read, session, inbox.clone())
                age = self.adapter.max_connection_age
                if age is not None:
                    nursery.start_soon(self._rotate, session, age)
        return session.error, session.healthy

    async def _start_books(self, session: _Session) -> None:
        """SYNCING on the first connection, RESYNCING on the next ones, for every book."""
        now = trio.current_time()
        for instrument, book in self._books.items():
            actions = book.resync("reconnected") if self._books_started else book.start(now)
            if self.adapter.subscription_pushes_snapshot:
                actions = [a for a in actions if isinstance(a, Publish)]
            await self._perform(session, instrument, actions)
        self._books_started = True

    async def _rotate(self, session: _Session, age: float) -> None:
        await trio.sleep(age)
        session.nursery.cancel_scope.cancel(reason=f"connection rotated after {age:g}s")

    async def _mark_all_stale(self, reason: str) -> None:
        for instrument, book in self._books.items():
            await self._perform(None, instrument, book.on_stale(reason))

    async def _give_up(self, attempts: int, reason: str) -> None:
        self._counts["give_ups"] += 1
        text = f"gave up after {attempts} failed connection attempts: {reason}"
        log.error("%s: %s", self.name, text, extra=self._extra)
        for instrument, book in self._books.items():
            status = BookStatus(state=BookState.STALE, reason=text, last_seq=book.last_seq)
            actions = book.on_stale(text) or [Publish(Kind.BOOK_STATUS, None, status)]
            await self._perform(None, instrument, actions)
        raise ProviderGaveUpError(self.name, attempts, reason)

    # -- the connection's tasks -----------------------------------------------------

    async def _read(self, session: _Session, inbox: trio.MemorySendChannel[_Item]) -> None:
        """Receive frames into the inbox, with the heartbeat and the frame size limit."""
        with inbox:
            try:
                await self._read_frames(session, inbox)
            except TransportError as exc:
                if exc.code == TOO_BIG:
                    self._counts["oversized_frames"] += 1
                session.fail(exc)

    async def _read_frames(self, session: _Session, inbox: trio.MemorySendChannel[_Item]) -> None:
        beat, limit, ws = self.adapter.heartbeat, self.config.max_frame_bytes, session.ws
        last, pinged = trio.current_time(), False
        while True:
            ping_due = beat.ping is not None and not pinged
            raw: str | bytes | None = None
            with trio.move_on_at(last + (beat.ping_after if ping_due else beat.dead_after)):
                raw = await ws.get_message()
            now = trio.current_time()
            if raw is None:
                if beat.ping is None or pinged:
                    raise TransportError(session.url, f"no message for {now - last:.1f}s")
                pinged = True
                self._counts["pings"] += 1
                await ws.send_message(beat.ping)
                continue
            last, pinged, session.healthy = now, False, True
            self._counts["frames"] += 1
            if len(raw) > limit:
                self._count_bad("oversized_frames", "frame of %d > %d dropped", len(raw), limit)
                continue
            await inbox.send(_Frame(raw, now))

    async def _forward_resyncs(self, inbox: trio.MemorySendChannel[_Item]) -> None:
        """Hand the pipeline's resync requests (collected without blocking) to the inbox."""
        with inbox:
            while True:
                await self._wakeup.wait()
                self._wakeup = trio.Event()
                pending, self._pending = self._pending, {}
                for instrument, reason in pending.items():
                    await inbox.send(_Resync(instrument, reason))

    def _on_resync(self, instrument: str, reason: str) -> None:
        """The pipeline's listener: must not block, so it only notes the request.

        At most one request per book is pending, so the note is bounded.
        """
        if instrument not in self._books:
            log.debug(
                "%s: resync of unknown instrument %s ignored",
                self.name,
                instrument,
                extra=log_fields(provider=self.name, instrument=instrument),
            )
            return
        self._pending.setdefault(instrument, reason)
        self._wakeup.set()

    async def _process(self, session: _Session, receive: trio.MemoryReceiveChannel[_Item]) -> None:
        """The only task that touches books and publishes while connected."""
        interval = self.config.stale_check_interval
        next_check = trio.current_time() + interval
        with receive:
            while True:
                item: _Item | None = None
                with trio.move_on_at(next_check):
                    item = await receive.receive()
                if item is not None:
                    await self._handle(session, item)
                now = trio.current_time()
                if now >= next_check:
                    next_check = now + interval
                    for instrument, book in self._books.items():
                        await self._perform(session, instrument, book.check_stale(now))

    async def _handle(self, session: _Session, item: _Item) -> None:
        if isinstance(item, _Frame):
            for message in self._decode(item.raw):
                await self._on_message(session, message, item.now)
        elif isinstance(item, _Snapshot):
            session.inflight.discard(item.instrument)
            book = self._books[item.instrument]
            actions = book.on_snapshot(item.snapshot, trio.current_time())
            await self._perform(session, item.instrument, actions)
        else:
            self._counts["resyncs_requested"] += 1
            log.info(
                "%s %s: resync requested: %s",
                self.name,
                item.instrument,
                item.reason,
                extra=log_fields(provider=self.name, instrument=item.instrument),
            )
            await self._perform(
                session, item.instrument, self._books[item.instrument].resync(item.reason)
            )

    def _decode(self, raw: str | bytes) -> list[VenueMessage]:
        text = self.adapter.text_message(raw)
        if text is not None:
            return [text]
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._count_bad("malformed_frames", "frame is not JSON: %.80r", raw)
            return []
        try:
            return self.adapter.parse(doc)
        except DecodeError as exc:
            self._count_bad("decode_errors", "frame rejected: %s: %.80r", exc, raw)
            return []

    async def _on_message(self, session: _Session, message: VenueMessage, now: float) -> None:
        if isinstance(message, DepthDiff | DepthSnapshot | Parsed):
            book = self._books.get(message.instrument)
            if book is None:
                self._counts["unknown_instrument"] += 1
            elif isinstance(message, DepthDiff):
                await self._perform(session, message.instrument, book.on_diff(message, now))
            elif isinstance(message, DepthSnapshot):
                await self._perform(session, message.instrument, book.on_snapshot(message, now))
            else:
                await self._emit(message.kind, message.instrument, message.seq, message.payload)
        elif message.is_error:
            self._counts["venue_errors"] += 1
            log.warning(
                "%s: venue error %s: %s",
                self.name,
                message.code,
                message.message,
                extra=self._extra,
            )
        elif message.event == "pong":
            self._counts["pongs"] += 1

    # -- actions ------------------------------------------------------------------

    async def _perform(
        self, session: _Session | None, instrument: str, actions: list[BookAction]
    ) -> None:
        """Publish the book's events in order; start its snapshot requests (if connected)."""
        for action in actions:
            if isinstance(action, Publish):
                await self._emit(action.kind, instrument, action.seq, action.payload)
            elif session is not None:
                self._request_snapshot(session, instrument, action.reason)

    async def _emit(self, kind: Kind, instrument: str, seq: int | None, payload: Payload) -> None:
        event = self.pipe.new_event(
            kind=kind, provider=self.name, instrument=instrument, seq=seq, payload=payload
        )
        self._counts["published"] += 1
        await self.pipe.publish(event)

    def _request_snapshot(self, session: _Session, instrument: str, reason: str) -> None:
        """Start getting a fresh book, unless one is already on its way for it."""
        self._counts["snapshots_requested"] += 1
        if instrument in session.inflight:
            return  # its answer goes through the assembler, which asks again if need be
        session.inflight.add(instrument)
        log.info(
            "%s %s: requesting a snapshot (%s)",
            self.name,
            instrument,
            reason,
            extra=log_fields(provider=self.name, instrument=instrument),
        )
        plan = self.adapter.snapshot_plan(instrument)
        if isinstance(plan, Resubscribe):
            session.nursery.start_soon(self._resubscribe, session, instrument, plan)
        else:
            inbox = session.inbox.clone()
            session.nursery.start_soon(self._fetch_snapshot, session, instrument, plan, inbox)

    async def _resubscribe(self, session: _Session, instrument: str, plan: Resubscribe) -> None:
        try:
            for message in plan.messages:
                await session.ws.send_message(message)
        except TransportError as exc:
            session.fail(exc)
        finally:
            session.inflight.discard(instrument)

    async def _fetch_snapshot(
        self,
        session: _Session,
        instrument: str,
        plan: RestSnapshot,
        inbox: trio.MemorySendChannel[_Item],
    ) -> None:
        """GET the snapshot, retrying with backoff until it parses; hand it to the inbox."""
        with inbox:
            async with session.limiter:
                snapshot = await self._get_snapshot(instrument, plan)
            await inbox.send(_Snapshot(instrument, snapshot))

    async def _get_snapshot(self, instrument: str, plan: RestSnapshot) -> DepthSnapshot:
        attempt = 0
        while True:
            try:
                with trio.fail_after(self.config.rest_timeout):
                    status, body = await self.transport.get_json(plan.url)
                if status == 200:
                    return plan.parse(body)
                reason = f"HTTP {status}: {body!r:.120}"
            except TransportError as exc:
                reason = exc.reason
            except trio.TooSlowError:
                reason = f"no answer within {self.config.rest_timeout:g}s"
            except DecodeError as exc:
                self._counts["decode_errors"] += 1
                reason = f"bad snapshot: {exc}"
            attempt += 1
            self._counts["snapshot_failures"] += 1
            delay = self.config.snapshot_retry.delay(attempt, self.rng)
            log.warning(
                "%s %s: snapshot failed (%s); retry in %.2fs",
                self.name,
                instrument,
                reason,
                delay,
                extra=log_fields(provider=self.name, instrument=instrument),
            )
            await trio.sleep(delay)

    def _count_bad(self, counter: str, message: str, *args: object) -> None:
        """Count a bad frame; log the first few, then one in ``LOG_EVERY``."""
        self._counts[counter] += 1
        n = self._counts[counter]
        if n <= LOG_FIRST or n % LOG_EVERY == 0:
            log.warning(
                "%s: " + message + " (%s #%d)", self.name, *args, counter, n, extra=self._extra
            )


_COUNTERS: Final = tuple(
    f.name
    for f in attrs.fields(ProviderStatistics)
    if f.name not in ("provider", "connected", "books")
)


async def serve_provider(
    pipe: EventSink,
    adapter: VenueAdapter,
    transport: Transport,
    *,
    config: ProviderConfig | None = None,
    rng: Callable[[], float] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a :class:`Provider` until cancelled; see :meth:`Provider.serve`.

    Build the :class:`Provider` yourself to read its ``statistics()``.

    Cancellation:
        Safe at any point; see :meth:`Provider.serve`.
    """
    provider = Provider(pipe, adapter, transport, config=config or ProviderConfig())
    if rng is not None:
        provider.rng = rng
    await provider.serve(task_status=task_status)
