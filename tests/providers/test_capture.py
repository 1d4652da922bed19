"""Capture files: read what the recorder writes, tolerate a cut-short last line."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from meltica_trio import DecodeError
from meltica_trio.providers import CaptureKind, CaptureRecord, CaptureWriter, read_capture

DATA = Path(__file__).parent / "data"
RECORDS = [
    CaptureRecord(1.5, CaptureKind.WS_OPEN, "wss://example/ws", None),
    CaptureRecord(1.75, CaptureKind.WS_SEND, "wss://example/ws", {"op": "subscribe"}),
    CaptureRecord(2.0, CaptureKind.WS, "wss://example/ws", {"p": "0.35130000", "n": 7}),
    CaptureRecord(2.25, CaptureKind.REST, "https://h/api/v3/depth?symbol=X", {"bids": []}),
]


def test_written_records_read_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    with CaptureWriter(path) as writer:
        for record in RECORDS:
            writer.write(record)
        assert writer.written == len(RECORDS)
    assert list(read_capture(path)) == RECORDS


def test_writer_appends_to_an_existing_capture(tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    with CaptureWriter(path) as writer:
        writer.write(RECORDS[0])
    writer = CaptureWriter(str(path))
    writer.write(RECORDS[1])
    writer.close()
    writer.write(RECORDS[2])  # reopens in append mode
    writer.close()
    assert list(read_capture(path)) == RECORDS[:3]


def test_record_line_has_the_shared_format() -> None:
    line = RECORDS[2].to_json()
    assert (
        line == b'{"t":2.0,"kind":"ws","url":"wss://example/ws","data":{"p":"0.35130000","n":7}}\n'
    )


def test_shared_fixture_captures_read_completely() -> None:
    binance = list(read_capture(DATA / "binance-spot-capture.jsonl"))
    okx = list(read_capture(DATA / "okx-capture.jsonl"))
    assert (len(binance), len(okx)) == (270, 414)
    assert binance[0].kind is CaptureKind.WS_OPEN
    assert binance[0].data is None
    assert {r.kind for r in okx} == set(CaptureKind) - {CaptureKind.REST}
    assert all(a.t <= b.t for a, b in itertools.pairwise(binance))


def test_trailing_partial_line_ends_the_capture_quietly(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_bytes(RECORDS[0].to_json() + RECORDS[2].to_json()[:20])
    assert list(read_capture(path)) == RECORDS[:1]


def test_complete_last_line_without_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "no-newline.jsonl"
    path.write_bytes(RECORDS[0].to_json() + RECORDS[2].to_json().rstrip(b"\n"))
    assert list(read_capture(path)) == [RECORDS[0], RECORDS[2]]


def test_empty_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_bytes(b"\n" + RECORDS[0].to_json() + b"  \n" + RECORDS[1].to_json())
    assert list(read_capture(path)) == RECORDS[:2]


def test_malformed_line_raises_decode_error_with_line_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(RECORDS[0].to_json() + b'{"t": 1, "kind": \n' + RECORDS[1].to_json())
    records = read_capture(path)
    assert next(records) == RECORDS[0]
    with pytest.raises(DecodeError, match="not JSON") as info:
        next(records)
    assert info.value.path == f"{path}:2"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"[1, 2]\n", "expected a JSON object"),
        (b'{"t": "1", "kind": "ws", "url": "u", "data": 1}\n', "'t'"),
        (b'{"t": true, "kind": "ws", "url": "u", "data": 1}\n', "'t'"),
        (b'{"t": 1, "kind": "wss", "url": "u", "data": 1}\n', "'kind'"),
        (b'{"t": 1, "kind": 3, "url": "u", "data": 1}\n', "'kind'"),
        (b'{"t": 1, "kind": "ws", "url": null, "data": 1}\n', "'url'"),
        (b'{"t": 1, "kind": "ws", "url": "u"}\n', "'data'"),
    ],
)
def test_complete_line_that_is_not_a_record_raises(
    tmp_path: Path, line: bytes, reason: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(line)
    with pytest.raises(DecodeError, match=reason) as info:
        list(read_capture(path))
    assert info.value.path == f"{path}:1"


def test_integer_time_reads_as_float() -> None:
    record = CaptureRecord.from_json(b'{"t": 3, "kind": "ws_open", "url": "u", "data": null}')
    assert record == CaptureRecord(3.0, CaptureKind.WS_OPEN, "u", None)
    assert type(record.t) is float
