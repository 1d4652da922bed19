"""The recorder writes the capture format without blocking the loop, and a recording
replays to the same books: record a replay, then replay the recording."""

from __future__ import annotations

from pathlib import Path

import orjson
import trio
import trio.testing

from meltica_trio import PipelineConfig, open_pipeline
from meltica_trio.events import BookState
from meltica_trio.providers import (
    BinanceAdapter,
    CaptureKind,
    OkxAdapter,
    Provider,
    VenueAdapter,
    open_recording_transport,
    read_capture,
    replay_capture,
)
from meltica_trio.testing import FakeTransport, ReplayTransport

DATA = Path(__file__).parents[1] / "providers" / "data"
BINANCE = DATA / "binance-spot-capture.jsonl"
OKX = DATA / "okx-capture.jsonl"
BINANCE_INSTRUMENTS = ("NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR")
OKX_INSTRUMENTS = ("BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT")


async def serve_replay(
    replay: ReplayTransport, adapter: VenueAdapter, path: Path | None
) -> Provider:
    """Serve ``replay`` to its end, recording to ``path`` when given."""
    async with open_pipeline(PipelineConfig(debug=True)) as pipe, trio.open_nursery() as nursery:
        if path is None:
            provider = Provider(pipe, adapter, replay)
            await nursery.start(provider.serve)
            await replay.finished.wait()
            await trio.testing.wait_all_tasks_blocked()
        else:
            async with open_recording_transport(replay, path, wall_clock=lambda: 1.5) as recorder:
                provider = Provider(pipe, adapter, recorder)
                await nursery.start(provider.serve)
                await replay.finished.wait()
                await trio.testing.wait_all_tasks_blocked()
                nursery.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    return provider


def tops(provider: Provider, instruments: tuple[str, ...]) -> list[object]:
    return [provider.book(i).book.top() for i in instruments]


async def test_recording_of_a_binance_replay_replays_to_the_same_books(tmp_path: Path) -> None:
    recording = tmp_path / "binance.jsonl"
    adapter = BinanceAdapter(BINANCE_INSTRUMENTS)
    original = await serve_replay(ReplayTransport.from_capture(BINANCE), adapter, recording)

    records = list(read_capture(recording))
    kinds = [r.kind for r in records]
    assert kinds[0] is CaptureKind.WS_OPEN
    assert records[0].url == adapter.stream_url()
    assert kinds.count(CaptureKind.REST) == 4
    assert kinds.count(CaptureKind.WS) == 265
    assert {r.t for r in records} == {1.5}

    again = await serve_replay(ReplayTransport.from_capture(recording), adapter, None)
    assert tops(again, BINANCE_INSTRUMENTS) == tops(original, BINANCE_INSTRUMENTS)
    assert [b.state for b in again.statistics().books] == [BookState.LIVE] * 4
    # The synchronous replay of the core agrees, too.
    core = replay_capture(recording, "binance", depth=1000)
    assert [(b.bids, b.asks) for b in core.books.values()] == tops(original, BINANCE_INSTRUMENTS)


async def test_recording_of_an_okx_replay_keeps_sends_and_verifies_every_checksum(
    tmp_path: Path,
) -> None:
    recording = tmp_path / "okx.jsonl"
    adapter = OkxAdapter(OKX_INSTRUMENTS)
    original = await serve_replay(ReplayTransport.from_capture(OKX), adapter, recording)
    sends = [r for r in read_capture(recording) if r.kind is CaptureKind.WS_SEND]
    assert [r.data for r in sends] == [orjson.loads(m) for m in adapter.subscribe_messages()]

    again = await serve_replay(ReplayTransport.from_capture(recording), adapter, None)
    assert sum(b.checksum_ok for b in again.statistics().books) == 290
    assert tops(again, OKX_INSTRUMENTS) == tops(original, OKX_INSTRUMENTS)


async def test_non_json_frames_are_recorded_as_text_and_replayed_as_sent(tmp_path: Path) -> None:
    recording = tmp_path / "raw.jsonl"
    fake = FakeTransport()
    async with (
        open_pipeline(PipelineConfig(debug=True)) as pipe,
        trio.open_nursery() as nursery,
        open_recording_transport(fake, recording) as recorder,
    ):
        provider = Provider(pipe, OkxAdapter(["BTC-USDT"]), recorder)
        await nursery.start(provider.serve)
        conn = await fake.accept()
        await conn.send("pong")
        await conn.send("{broken")
        await conn.send(b'{"event": "subscribe", "arg": {"channel": "books"}}')
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    ws = [r.data for r in read_capture(recording) if r.kind is CaptureKind.WS]
    assert ws == ["pong", "{broken", {"event": "subscribe", "arg": {"channel": "books"}}]

    replay = ReplayTransport.from_capture(recording)
    async with open_pipeline(PipelineConfig(debug=True)) as pipe, trio.open_nursery() as nursery:
        again = Provider(pipe, OkxAdapter(["BTC-USDT"]), replay)
        await nursery.start(again.serve)
        await replay.finished.wait()
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    stats = again.statistics()
    assert (stats.pongs, stats.malformed_frames, stats.frames) == (1, 1, 3)


async def test_records_queued_when_cancelled_are_still_flushed(tmp_path: Path) -> None:
    recording = tmp_path / "cancelled.jsonl"
    fake = FakeTransport()
    with trio.CancelScope() as scope:
        async with (
            open_recording_transport(fake, recording) as recorder,
            recorder.open_websocket("wss://venue/ws") as ws,
        ):
            await ws.send_message('{"op": "subscribe"}')
            scope.cancel()
            await trio.sleep_forever()
    records = list(read_capture(recording))
    assert [r.kind for r in records] == [CaptureKind.WS_OPEN, CaptureKind.WS_SEND]
