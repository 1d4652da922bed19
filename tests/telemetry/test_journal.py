"""The DLQ file: one JSON line per dead letter with its whole event, written off the hot path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import trio

from meltica_trio import (
    ConsumerContext,
    DecodeError,
    Event,
    Kind,
    Side,
    Trade,
    encode_event,
    read_dead_letters,
)
from meltica_trio.telemetry import (
    DeadLetterJournal,
    DeadLetterQueue,
    encode_dead_letter,
    parse_dead_letter,
    serve_dead_letter_file,
)
from meltica_trio.testing import assert_balanced, open_test_pipeline


def _event(event_id: int = 7, payload: object | None = None) -> Event:
    return Event(
        event_id=event_id,
        kind=Kind.TRADE,
        provider="binance",
        instrument="BTC-USDT",
        seq=1000 + event_id,
        trace_id=f"trace-{event_id}",
        decision_id=f"decision-{event_id}",
        payload=payload
        if payload is not None
        else Trade(price="1.5", size="2", side=Side.BUY, trade_id="t", trade_ts=1),
    )


def _line(event: Event, consumer: str = "momentum") -> bytes:
    letter = DeadLetterQueue().record(consumer, event, ValueError("bad price"), 1_700_000_000)
    return encode_dead_letter(letter, event)


def test_a_line_round_trips_the_entry_and_its_event() -> None:
    event = _event()
    line = _line(event)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1

    record = parse_dead_letter(line)
    assert (record.consumer_id, record.trace_id, record.decision_id) == (
        "momentum",
        "trace-7",
        "decision-7",
    )
    assert (record.kind, record.provider, record.instrument, record.seq) == (
        "trade",
        "binance",
        "BTC-USDT",
        1007,
    )
    assert record.error == "ValueError: bad price"
    assert record.event_error is None
    assert encode_event(record.event()) == encode_event(event)
    assert record.as_dict() == orjson.loads(line)


def test_an_event_that_cannot_be_encoded_is_kept_as_its_coordinates() -> None:
    event = _event()
    event.payload = None  # a trade without a payload: the codec refuses it
    record = parse_dead_letter(_line(event))
    assert record.event_document is None
    assert record.event_error is not None
    assert "could not be encoded" in record.event_error
    with pytest.raises(DecodeError, match="could not be encoded"):
        record.event()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"dlq_version": 2}, "dlq_version 2 is not supported"),
        ({"event_id": True}, "unexpected bool"),
        ({"seq": "12"}, "unexpected str"),
        ({"consumer_id": None}, "unexpected NoneType"),
    ],
)
def test_a_line_with_a_wrong_field_is_refused(change: dict[str, object], problem: str) -> None:
    document = orjson.loads(_line(_event())) | change
    with pytest.raises(DecodeError, match=problem):
        parse_dead_letter(orjson.dumps(document))


def test_a_line_missing_a_field_names_it() -> None:
    document = orjson.loads(_line(_event()))
    del document["traceback"]
    with pytest.raises(DecodeError) as caught:
        parse_dead_letter(orjson.dumps(document))
    assert caught.value.path == "traceback"


@pytest.mark.parametrize("line", [b"not json", b"[1, 2]"])
def test_a_line_that_is_not_an_object_is_refused(line: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_dead_letter(line)


def test_reading_a_file_reports_bad_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "dlq.jsonl"
    path.write_bytes(_line(_event(1)) + b"\n" + b'{"half": ' + b"\n" + _line(_event(2)))
    dlq = read_dead_letters(path)
    assert [r.event_id for r in dlq.records] == [1, 2]
    assert len(dlq.problems) == 1
    assert dlq.problems[0][0] == 3  # the blank line 2 is skipped, not reported
    assert "malformed JSON" in dlq.problems[0][1]


def test_entries_are_found_by_id_or_a_unique_prefix(tmp_path: Path) -> None:
    path = tmp_path / "dlq.jsonl"
    lines = [orjson.loads(_line(_event(i))) for i in (1, 2, 3)]
    for document, letter_id in zip(lines, ("abc111", "abc222", "fff333"), strict=True):
        document["letter_id"] = letter_id
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in lines))
    dlq = read_dead_letters(path)
    assert dlq.find("abc222").event_id == 2
    assert dlq.find("f").event_id == 3
    with pytest.raises(KeyError, match="2 DLQ entries start with 'abc'"):
        dlq.find("abc")
    with pytest.raises(KeyError, match="no DLQ entry"):
        dlq.find("999")
    with pytest.raises(KeyError, match="no DLQ entry"):
        dlq.find("")


def test_a_full_journal_counts_what_it_could_not_queue(tmp_path: Path) -> None:
    journal = DeadLetterJournal(tmp_path / "dlq.jsonl", capacity=2)
    dlq = DeadLetterQueue()
    dlq.write_to(journal)
    for event_id in range(1, 6):
        dlq.record("c", _event(event_id), ValueError("x"), event_id)
    # Nothing served the journal: two lines wait, three were lost, none blocked.
    stats = dlq.statistics()
    assert (stats.recorded, stats.journal_written, stats.journal_failed) == (5, 0, 3)


def test_a_journal_capacity_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DeadLetterJournal(tmp_path / "dlq.jsonl", capacity=0)


async def test_a_pipeline_with_a_dlq_path_appends_every_failure(tmp_path: Path) -> None:
    path = tmp_path / "dlq.jsonl"
    path.write_bytes(_line(_event(99), consumer="earlier-run"))

    def picky(event: Event, ctx: ConsumerContext) -> None:
        if event.seq is not None and event.seq % 2:
            raise ValueError(f"odd seq {event.seq}")

    async with open_test_pipeline(dlq_path=str(path)) as pipe:
        await pipe.subscribe("picky", picky)
        for seq in range(1, 7):
            payload = Trade(price="10", size="1", side=Side.SELL, trade_id=str(seq), trade_ts=seq)
            event = pipe.new_event(
                kind=Kind.TRADE,
                provider="sim",
                instrument="ETH-USDT",
                seq=seq,
                payload=payload,
                trace_id=f"t-{seq}",
            )
            await pipe.publish(event)
        await pipe.wait_idle()
    assert_balanced(pipe)

    stats = pipe.statistics().dlq
    assert (stats.recorded, stats.journal_written, stats.journal_failed) == (3, 3, 0)
    dlq = read_dead_letters(path)
    assert not dlq.problems
    assert [r.consumer_id for r in dlq.records] == ["earlier-run", "picky", "picky", "picky"]
    ours = dlq.records[1:]
    assert [r.seq for r in ours] == [1, 3, 5]
    assert [r.trace_id for r in ours] == ["t-1", "t-3", "t-5"]
    assert [r.letter_id for r in ours] == [e.letter_id for e in pipe.dlq.entries()]
    replayed = ours[1].event()
    assert isinstance(replayed.payload, Trade)
    assert (replayed.seq, replayed.payload.trade_id, replayed.trace_id) == (3, "3", "t-3")


async def test_lines_queued_at_shutdown_are_still_written(tmp_path: Path) -> None:
    path = tmp_path / "dlq.jsonl"
    dlq = DeadLetterQueue()
    async with trio.open_nursery() as nursery:
        journal = await nursery.start(serve_dead_letter_file, dlq, path)
        for event_id in range(1, 4):
            dlq.record("c", _event(event_id), ValueError("x"), event_id)
        # Cancelled before the writer ran once: the shutdown flush writes all three.
        nursery.cancel_scope.cancel()
    assert journal.written == 3
    assert [r.event_id for r in read_dead_letters(path).records] == [1, 2, 3]
    dlq.record("c", _event(4), ValueError("x"), 4)
    assert dlq.statistics().journal_failed == 1  # the file has closed


async def test_an_unwritable_dlq_path_fails_the_pipeline_open(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "dlq.jsonl"
    with pytest.RaisesGroup(FileNotFoundError, flatten_subgroups=True):
        async with open_test_pipeline(dlq_path=str(path)):
            pytest.fail("the pipeline opened with an unwritable DLQ file")  # pragma: no cover


async def _until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(10):
        # The write happens in a worker thread: there is no trio event to wait on.
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.01)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
async def test_a_failed_write_is_counted_and_logged_and_the_writer_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dlq = DeadLetterQueue()
    async with trio.open_nursery() as nursery:
        journal = await nursery.start(serve_dead_letter_file, dlq, "/dev/full")
        dlq.record("c", _event(1), ValueError("x"), 1)
        await _until(lambda: journal.failed == 1)
        dlq.record("c", _event(2), ValueError("x"), 2)
        await _until(lambda: journal.failed == 2)
        nursery.cancel_scope.cancel()
    assert (journal.written, journal.failed) == (0, 2)
    assert dlq.statistics().journal_failed == 2
    assert "DLQ file /dev/full: 1 entries not written" in caplog.text
