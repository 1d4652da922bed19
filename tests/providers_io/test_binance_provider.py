"""Binance over real localhost sockets: a trio-websocket venue that drops the
connection mid-stream, REST snapshots from a local HTTP server, the real
NetworkTransport, and a real pipeline whose subscriber must never see a book skip."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import orjson
import pytest
import trio
import trio.testing
import trio_websocket
from fake_venues import BinanceVenue, Published, continuity_breaks

from meltica_trio import ConsumerContext, Event, Kind, PipelineConfig, open_pipeline
from meltica_trio.events import BookState, BookStatus
from meltica_trio.providers import (
    Backoff,
    BinanceAdapter,
    Provider,
    ProviderConfig,
    ProviderGaveUpError,
    open_network_transport,
)
from meltica_trio.providers._transport import WS_CLOSE_TIMEOUT
from meltica_trio.venue import MarketConfig, VenueConfig, open_venue

FAST = ProviderConfig(reconnect=Backoff(initial=0.01, maximum=0.05, jitter=0.0))
"""Reconnect at once: these tests run on the real clock (real sockets)."""


@attrs.define(eq=False)
class LocalBinance:
    """A Binance-like venue on 127.0.0.1: WebSocket streams and REST snapshots.

    ``script(n, ws)`` plays connection ``n`` (from 1); ``snapshot_served`` is set on
    each REST snapshot served, so a script can wait for the client to have one.
    """

    venue: BinanceVenue
    script: Callable[[int, trio_websocket.WebSocketConnection, LocalBinance], object]
    paths: list[str] = attrs.field(factory=list)
    snapshots: int = 0
    snapshot_served: trio.Event = attrs.field(factory=trio.Event)
    ws_port: int = 0
    http_port: int = 0

    async def _ws(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        self.paths.append(request.path)
        await self.script(len(self.paths), ws, self)  # type: ignore[misc]

    async def _http(self, stream: trio.SocketStream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            head += chunk
        target = head.split(b" ", 2)[1].decode()
        assert target.startswith("/api/v3/depth?symbol=BTCUSDT"), target
        body = orjson.dumps(self.venue.snapshot())
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        await stream.aclose()
        self.snapshots += 1
        self.snapshot_served.set()
        self.snapshot_served = trio.Event()

    async def wait_snapshots(self, count: int) -> None:
        while self.snapshots < count:
            await self.snapshot_served.wait()


@asynccontextmanager
async def local_binance(
    venue: BinanceVenue, script: Callable[..., object]
) -> AsyncIterator[LocalBinance]:
    server = LocalBinance(venue, script)
    async with trio.open_nursery() as nursery:
        ws_server = await nursery.start(
            trio_websocket.serve_websocket, server._ws, "127.0.0.1", 0, None
        )
        server.ws_port = ws_server.port
        listeners = await nursery.start(trio.serve_tcp, server._http, 0)
        server.http_port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel()


@attrs.define(eq=False)
class Collector:
    """A consumer keeping what it saw; ``done`` is set at the delta with ``final_seq``."""

    final_seq: int
    seen: list[Published] = attrs.field(factory=list)
    done: trio.Event = attrs.field(factory=trio.Event)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        self.seen.append((event.kind, event.instrument, event.seq, event.payload))
        if event.kind is Kind.BOOK_DELTA and event.seq == self.final_seq:
            self.done.set()


@attrs.define(eq=False)
class LiveCounter:
    """A consumer of book statuses; ``done`` once LIVE follows a RESYNCING."""

    resyncing: bool = False
    done: trio.Event = attrs.field(factory=trio.Event)

    def __call__(self, event: Event, ctx: ConsumerContext) -> None:
        assert isinstance(event.payload, BookStatus)
        if event.payload.state is BookState.RESYNCING:
            self.resyncing = True
        elif event.payload.state is BookState.LIVE and self.resyncing:
            self.done.set()


async def drop_after_twenty(
    n: int, ws: trio_websocket.WebSocketConnection, server: LocalBinance
) -> None:
    """Connection 1: 5 diffs, (snapshot), 15 diffs, then the venue drops it while 5
    more updates happen. Connection 2: 5 diffs, (snapshot), 25 diffs, then stays up."""
    venue = server.venue
    for _ in range(5):
        await ws.send_message(orjson.dumps(venue.diff()).decode())
    await server.wait_snapshots(n)
    for _ in range(15 if n == 1 else 25):
        await ws.send_message(orjson.dumps(venue.diff()).decode())
    if n == 1:
        for _ in range(5):
            venue.diff()  # updates nobody hears while the connection is down
        await ws.aclose(code=1012, reason="service restart")
        return
    await trio.sleep_forever()


async def test_dropped_connection_reconnects_resyncs_and_no_delivered_update_is_skipped() -> None:
    venue = BinanceVenue("BTCUSDT", update_id=1000)
    collector = Collector(final_seq=1000 + 20 + 5 + 30)
    with trio.fail_after(20):
        async with (
            local_binance(venue, drop_after_twenty) as server,
            open_pipeline(PipelineConfig(debug=True)) as pipe,
            open_network_transport() as transport,
        ):
            await pipe.subscribe("collector", collector)
            adapter = BinanceAdapter(
                ["BTC-USDT"],
                ws_url=f"ws://127.0.0.1:{server.ws_port}",
                rest_url=f"http://127.0.0.1:{server.http_port}",
            )
            provider = Provider(pipe, adapter, transport, config=FAST)
            async with trio.open_nursery() as nursery:
                await nursery.start(provider.serve)
                await collector.done.wait()
                stats = provider.statistics()
                book = provider.book("BTC-USDT")
                assert book.book.top() == venue.book.top()
                nursery.cancel_scope.cancel()

    assert server.paths == [server.paths[0]] * 2  # the same streams subscribed again
    assert "btcusdt@depth@100ms" in server.paths[0]
    assert (stats.connects, stats.reconnects, stats.snapshots_requested) == (2, 1, 2)
    assert continuity_breaks(collector.seen) == []
    states = [p.state for _, _, _, p in collector.seen if isinstance(p, BookStatus)]
    assert states == [
        BookState.SYNCING,
        BookState.LIVE,
        BookState.STALE,
        BookState.RESYNCING,
        BookState.LIVE,
    ]
    deltas = [seq for kind, _, seq, _ in collector.seen if kind is Kind.BOOK_DELTA]
    assert deltas[-1] == 1055
    assert not any(1021 <= seq <= 1025 for seq in deltas if seq is not None)


async def oversized_then_normal(
    n: int, ws: trio_websocket.WebSocketConnection, server: LocalBinance
) -> None:
    if n == 1:
        await ws.send_message("x" * 5000)
        await trio.sleep_forever()
    await ws.send_message(orjson.dumps(server.venue.diff()).decode())
    await trio.sleep_forever()


# trio-websocket 0.12 fails a connection for an oversized message without closing its
# TCP stream, so the socket is freed by the garbage collector (a ResourceWarning).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_message_over_the_transport_limit_closes_counts_and_reconnects() -> None:
    venue = BinanceVenue("BTCUSDT")
    with trio.fail_after(20):
        async with (
            local_binance(venue, oversized_then_normal) as server,
            open_pipeline(PipelineConfig(debug=True)) as pipe,
            open_network_transport(max_message_size=1000) as transport,
        ):
            adapter = BinanceAdapter(
                ["BTC-USDT"],
                ws_url=f"ws://127.0.0.1:{server.ws_port}",
                rest_url=f"http://127.0.0.1:{server.http_port}",
            )
            live_twice = LiveCounter()
            await pipe.subscribe("live", live_twice, kinds=Kind.BOOK_STATUS)
            provider = Provider(pipe, adapter, transport, config=FAST)
            async with trio.open_nursery() as nursery:
                await nursery.start(provider.serve)
                await live_twice.done.wait()
                stats = provider.statistics()
                nursery.cancel_scope.cancel()
    assert (stats.oversized_frames, stats.reconnects) == (1, 1)
    gc.collect()  # the leaked socket's warning belongs to this test


async def test_unreachable_venue_is_retried_and_reported_stale() -> None:
    with trio.fail_after(20):
        async with (
            open_pipeline(PipelineConfig(debug=True)) as pipe,
            open_network_transport() as transport,
        ):
            listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
            port = listener.socket.getsockname()[1]
            await listener.aclose()  # nothing listens there now
            adapter = BinanceAdapter(["BTC-USDT"], ws_url=f"ws://127.0.0.1:{port}")
            config = ProviderConfig(reconnect=Backoff(initial=0.01, jitter=0.0, max_attempts=3))
            provider = Provider(pipe, adapter, transport, config=config)
            with pytest.raises(ProviderGaveUpError, match="cannot connect"):
                await provider.serve()
    assert provider.statistics().connect_attempts == 3


async def test_rest_get_retries_5xx_answers_then_returns_the_json_body() -> None:
    answers = [b"503 Service Unavailable", b"502 Bad Gateway", b"200 OK"]

    async def handler(stream: trio.SocketStream) -> None:
        while b"\r\n\r\n" not in await stream.receive_some(4096):
            pass
        status, body = answers.pop(0), b'{"ok": true}'
        await stream.send_all(
            b"HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (status, len(body), body)
        )
        await stream.aclose()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, handler, 0)
            port = listeners[0].socket.getsockname()[1]
            async with open_network_transport() as transport:
                transport.rest_retry_backoff = 0.001
                assert await transport.get_json(f"http://127.0.0.1:{port}/x") == (
                    200,
                    {"ok": True},
                )
                transport.rest_retries = 0
                answers[:] = [b"500 Internal Server Error"]
                assert await transport.get_json(f"http://127.0.0.1:{port}/x") == (
                    500,
                    {"ok": True},
                )
            nursery.cancel_scope.cancel()


async def test_a_cancelled_connection_sends_its_close_and_does_not_wait_for_the_reply() -> None:
    # Its reader task is cancelled with it, so the venue's reply could never be read:
    # the close is cut after WS_CANCELLED_CLOSE, not WS_CLOSE_TIMEOUT (2 s).
    config = VenueConfig(market=MarketConfig(rate=50.0))
    async with open_venue(config) as venue, open_network_transport() as transport:
        url = f"{venue.ws_url}/stream?streams=btcusdt@aggTrade"
        with trio.CancelScope() as scope:
            async with transport.open_websocket(url) as ws:
                await ws.get_message()
                started = trio.current_time()
                scope.cancel()
                await trio.sleep_forever()
        assert trio.current_time() - started < WS_CLOSE_TIMEOUT / 2
