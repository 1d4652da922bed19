"""A transport that records what passes through it, in the capture format.

Wrap any transport, and a provider's traffic becomes a capture that
``ReplayTransport`` (or ``meltica-trio replay``) plays back through the same code::

    async with open_network_transport() as network, \\
            open_recording_transport(network, "btc.jsonl") as transport:
        await serve_provider(pipe, adapter, transport)

Records (``ws_open``, ``ws_send``, ``ws``, ``rest``) go through a bounded channel to
one writer task, which writes them in batches in a worker thread: the trio loop never
waits on the disk unless the disk falls ``buffer`` records behind, and then the
provider slows down rather than the recording losing records. A frame that is not
JSON (OKX's ``pong``, a corrupt frame) is recorded as the JSON string of its text;
a REST answer is recorded only when its status is 2xx, as the format has no status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import attrs
import orjson
import trio

from ._capture import CaptureKind, CaptureRecord, CaptureWriter
from ._transport import Transport, WebSocket

log = logging.getLogger(__name__)

RECORDER_BUFFER: Final = 4096
"""Records waiting for the writer before the recorded connection waits (a few seconds
of a busy stream)."""

RECORDER_BATCH: Final = 512
"""Records written per trip to the worker thread."""

RECORDER_CLOSE_TIMEOUT: Final = 5.0
"""Seconds the final flush may take when the recorder closes, even when cancelled."""


def _as_data(message: str | bytes) -> object:
    """The decoded JSON of a frame, or its text when it is not JSON."""
    try:
        return orjson.loads(message)
    except orjson.JSONDecodeError:
        return message.decode("utf-8", "replace") if isinstance(message, bytes) else message


@attrs.define(eq=False)
class _RecordingWebSocket:
    inner: WebSocket
    url: str
    recorder: RecordingTransport

    async def send_message(self, message: str) -> None:
        await self.inner.send_message(message)
        await self.recorder.record(CaptureKind.WS_SEND, self.url, _as_data(message))

    async def get_message(self) -> str | bytes:
        message = await self.inner.get_message()
        await self.recorder.record(CaptureKind.WS, self.url, _as_data(message))
        return message

    async def aclose(self) -> None:
        await self.inner.aclose()


@attrs.define(eq=False)
class RecordingTransport:
    """Passes everything to ``inner`` and records it; get one from
    :func:`open_recording_transport`.

    Attributes:
        inner: the transport recorded.
        wall_clock: seconds since the epoch, for the records' ``t``.
    """

    inner: Transport
    _records: trio.MemorySendChannel[CaptureRecord]
    wall_clock: Callable[[], float] = time.time

    async def record(self, kind: CaptureKind, url: str, data: object) -> None:
        """Queue one record for the writer (waits only when the writer is behind)."""
        await self._records.send(CaptureRecord(self.wall_clock(), kind, url, data))

    @asynccontextmanager
    async def open_websocket(self, url: str) -> AsyncIterator[WebSocket]:
        """Open through ``inner``; a ``ws_open`` record once connected."""
        async with self.inner.open_websocket(url) as ws:
            await self.record(CaptureKind.WS_OPEN, url, None)
            yield _RecordingWebSocket(ws, url, self)

    async def get_json(self, url: str) -> tuple[int, object]:
        """GET through ``inner``; a ``rest`` record when the status is 2xx."""
        status, body = await self.inner.get_json(url)
        if 200 <= status < 300:
            await self.record(CaptureKind.REST, url, body)
        return status, body


def _write(writer: CaptureWriter, batch: list[CaptureRecord], close: bool = False) -> None:
    for record in batch:
        writer.write(record)
    if close:
        writer.close()


def _drain(receive: trio.MemoryReceiveChannel[CaptureRecord], limit: int) -> list[CaptureRecord]:
    batch: list[CaptureRecord] = []
    while len(batch) < limit:
        try:
            batch.append(receive.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break
    return batch


async def _write_records(
    receive: trio.MemoryReceiveChannel[CaptureRecord], writer: CaptureWriter, batch: int
) -> None:
    """The writer task: batches to a worker thread; a shielded, bounded final flush."""
    with receive:
        try:
            async for record in receive:
                records = [record, *_drain(receive, batch - 1)]
                await trio.to_thread.run_sync(_write, writer, records)
        finally:
            with trio.move_on_after(RECORDER_CLOSE_TIMEOUT, shield=True) as scope:
                rest = _drain(receive, RECORDER_BUFFER)
                await trio.to_thread.run_sync(_write, writer, rest, True, abandon_on_cancel=True)
            if scope.cancelled_caught:
                log.error("capture %s: final flush timed out; records may be lost", writer.path)


@asynccontextmanager
async def open_recording_transport(
    inner: Transport,
    path: str | Path,
    *,
    buffer: int = RECORDER_BUFFER,
    batch: int = RECORDER_BATCH,
    wall_clock: Callable[[], float] = time.time,
) -> AsyncIterator[RecordingTransport]:
    """Record ``inner``'s traffic to the capture file ``path`` (appended) while open.

    Args:
        inner: the transport to record.
        path: the capture file.
        buffer: records queued for the writer before recording waits.
        batch: records per write in the worker thread.
        wall_clock: seconds since the epoch, for the records' ``t``.

    Cancellation:
        Records already queued are flushed on exit, shielded, within
        ``RECORDER_CLOSE_TIMEOUT`` seconds.
    """
    send, receive = trio.open_memory_channel[CaptureRecord](buffer)
    writer = CaptureWriter(path)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_write_records, receive, writer, batch)
        with send:
            yield RecordingTransport(inner, send, wall_clock)
