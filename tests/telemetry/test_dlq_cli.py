"""``meltica-trio dlq``: list, show, export and replay entries of a DLQ file."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from pathlib import Path

import orjson
import pytest

from meltica_trio import (
    ConsumerContext,
    ControlResult,
    Event,
    Kind,
    Side,
    Trade,
    read_dead_letters,
    replay_dead_letter,
)
from meltica_trio._dlq_cli import load_handler
from meltica_trio.cli import main
from meltica_trio.telemetry import DeadLetterQueue, encode_dead_letter
from meltica_trio.testing import open_test_pipeline


def _event(event_id: int) -> Event:
    return Event(
        event_id=event_id,
        kind=Kind.TRADE,
        provider="binance",
        instrument="BTC-USDT",
        seq=100 + event_id,
        trace_id=f"trace-{event_id}",
        payload=Trade(
            price="50000.5", size="0.25", side=Side.SELL, trade_id=f"T{event_id}", trade_ts=1
        ),
    )


@pytest.fixture
def dlq_file(tmp_path: Path) -> Path:
    """Three entries: consumers a, b, a; errors name their event."""
    path = tmp_path / "dlq.jsonl"
    dlq = DeadLetterQueue()
    lines = []
    for event_id, consumer in ((1, "a"), (2, "b"), (3, "a")):
        event = _event(event_id)
        letter = dlq.record(
            consumer, event, RuntimeError(f"bad event {event_id}"), 1_700_000_000 * 10**9
        )
        lines.append(encode_dead_letter(letter, event))
    path.write_bytes(b"".join(lines))
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a fresh module name, as an operator's project would be."""
    directory = tmp_path / "project"
    directory.mkdir()
    monkeypatch.chdir(directory)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the CLI adds the cwd; undo it after
    return directory


def _module(project: Path, source: str) -> str:
    name = f"strategy_{uuid.uuid4().hex}"
    (project / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    importlib.invalidate_caches()
    return name


def _ids(path: Path) -> list[str]:
    return [record.letter_id for record in read_dead_letters(path).records]


def test_list_prints_one_row_per_entry(dlq_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "list", "--file", str(dlq_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "TIME", "(UTC)", "CONSUMER", "EVENT", "TRACE", "ERROR"]
    assert lines[-1] == "3 entries"
    rows = lines[1:-1]
    assert [row.split()[0] for row in rows] == _ids(dlq_file)
    assert rows[1].split()[1:] == [
        "2023-11-14T22:13:20.000Z",
        "b",
        "trade",
        "binance",
        "BTC-USDT",
        "trace-2",
        "RuntimeError:",
        "bad",
        "event",
        "2",
    ]


def test_list_filters_by_consumer_and_speaks_json(
    dlq_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "list", "--file", str(dlq_file), "--consumer-id", "a", "--json"]) == 0
    documents = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["event_id"] for d in documents] == [1, 3]
    assert all(d["consumer_id"] == "a" for d in documents)
    assert "event_document" not in documents[0]  # the summary, not the event


def test_the_file_comes_from_the_environment_when_not_given(
    dlq_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MELTICA_DLQ_FILE", str(dlq_file))
    assert main(["dlq", "list"]) == 0
    assert capsys.readouterr().out.endswith("3 entries\n")


def test_show_prints_the_traceback_and_the_event(
    dlq_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    letter_id = _ids(dlq_file)[1]
    assert main(["dlq", "show", letter_id[:6], "--file", str(dlq_file)]) == 0
    out = capsys.readouterr().out
    assert f"id:          {letter_id}\n" in out
    assert "consumer:    b\n" in out
    assert "trace_id:    trace-2\n" in out
    assert "RuntimeError: bad event 2" in out
    event = orjson.loads(out[out.index("event:\n{") + len("event:\n") :])
    assert event["payload"]["trade_id"] == "T2"


def test_show_of_an_unknown_id_fails(dlq_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "show", "zzzz", "--file", str(dlq_file)]) == 1
    assert "no DLQ entry 'zzzz'" in capsys.readouterr().err


def test_a_missing_file_fails_with_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "list", "--file", str(tmp_path / "nope.jsonl")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_a_bad_line_is_reported_and_the_rest_listed(
    dlq_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with dlq_file.open("ab") as file:
        file.write(b'{"dlq_version": 1}\n')
    assert main(["dlq", "list", "--file", str(dlq_file)]) == 0
    captured = capsys.readouterr()
    assert captured.out.endswith("3 entries\n")
    assert f"{dlq_file}:4: skipped: letter_id: missing field" in captured.err


def test_export_writes_the_selected_entries_as_jsonl(
    dlq_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / "export.jsonl"
    assert (
        main(["dlq", "export", str(out_path), "--file", str(dlq_file), "--consumer-id", "a"]) == 0
    )
    assert capsys.readouterr().out == f"2 entries written to {out_path}\n"
    originals = [orjson.loads(line) for line in dlq_file.read_bytes().splitlines()]
    exported = [orjson.loads(line) for line in out_path.read_bytes().splitlines()]
    assert exported == [originals[0], originals[2]]
    # An export is a DLQ file itself.
    assert [r.event_id for r in read_dead_letters(out_path).records] == [1, 3]


def test_export_to_standard_output(dlq_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "export", "-", "--file", str(dlq_file)]) == 0
    assert capsys.readouterr().out.encode() == dlq_file.read_bytes()


def test_replay_runs_the_fixed_function_on_the_decoded_event(
    dlq_file: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _module(
        project,
        """
        SEEN = []

        def fixed(event, ctx):
            SEEN.append((ctx.consumer_id, event.seq, event.payload.trade_id, event.payload.price))
        """,
    )
    letter_id = _ids(dlq_file)[2]
    code = main(
        ["dlq", "replay", letter_id, "--file", str(dlq_file), "--consumer", f"{name}:fixed"]
    )
    assert code == 0
    assert capsys.readouterr().out == f"replayed {letter_id} into {name}:fixed as a: ok\n"
    assert sys.modules[name].SEEN == [("a", 103, "T3", "50000.5")]


def test_replay_of_a_function_still_broken_fails_with_its_traceback(
    dlq_file: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _module(
        project,
        """
        async def still_broken(event, ctx):
            raise KeyError(event.payload.trade_id)
        """,
    )
    letter_id = _ids(dlq_file)[0]
    argv = ["dlq", "replay", letter_id, "--file", str(dlq_file)]
    assert main([*argv, "--consumer", f"{name}:still_broken", "--as", "b"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"replayed {letter_id} into {name}:still_broken: it raised again\n")
    assert out.rstrip().endswith("KeyError: 'T1'")


def test_a_replay_never_sends_an_order(
    dlq_file: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _module(
        project,
        """
        def trader(event, ctx):
            ctx.submit_order(
                client_order_id="x", provider=event.provider, instrument=event.instrument,
                side="buy", quantity="1", price=event.payload.price,
            )
        """,
    )
    letter_id = _ids(dlq_file)[0]
    argv = ["dlq", "replay", letter_id, "--file", str(dlq_file), "--consumer", f"{name}:trader"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        "refused submit_order: trading switch is off for consumer 'a'",
        f"replayed {letter_id} into {name}:trader as a: ok",
    ]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("no_colon", "expected module:function"),
        ("meltica_trio_no_such_module:f", "No module named"),
        ("meltica_trio:no_such_function", "no_such_function"),
        ("meltica_trio:__version__", "is not callable"),
    ],
)
def test_replay_with_a_function_that_cannot_load_fails(
    dlq_file: Path, capsys: pytest.CaptureFixture[str], spec: str, problem: str
) -> None:
    letter_id = _ids(dlq_file)[0]
    assert main(["dlq", "replay", letter_id, "--file", str(dlq_file), "--consumer", spec]) == 1
    assert problem in capsys.readouterr().err


def test_replay_of_an_entry_without_its_event_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = _event(1)
    event.payload = None  # not encodable: the entry keeps no event
    letter = DeadLetterQueue().record("a", event, RuntimeError("x"), 0)
    path = tmp_path / "dlq.jsonl"
    path.write_bytes(encode_dead_letter(letter, event))
    argv = ["dlq", "replay", letter.letter_id, "--file", str(path), "--consumer", "builtins:print"]
    assert main(argv) == 1
    assert "could not be encoded" in capsys.readouterr().err


def test_load_handler_follows_dotted_attributes() -> None:
    assert load_handler("meltica_trio:ConsumerContext.submit_order") is (
        ConsumerContext.submit_order
    )


async def test_a_pipelines_failure_replays_into_the_fixed_consumer(tmp_path: Path) -> None:
    path = tmp_path / "dlq.jsonl"
    seen: list[tuple[str, str | None]] = []

    def buggy(event: Event, ctx: ConsumerContext) -> None:
        assert isinstance(event.payload, Trade)
        if event.payload.size.startswith("0."):
            raise ValueError("sizes below one were not expected")

    async def fixed(event: Event, ctx: ConsumerContext) -> None:
        assert isinstance(event.payload, Trade)
        seen.append((event.payload.size, event.trace_id))
        ctx.submit_order(
            client_order_id="c1", provider="x", instrument="BTC-USDT", side="buy", quantity="1"
        )

    async with open_test_pipeline(dlq_path=str(path)) as pipe:
        await pipe.subscribe("sizer", buggy)
        payload = Trade(price="1", size="0.5", side=Side.BUY, trade_id="9", trade_ts=1)
        event = pipe.new_event(
            kind=Kind.TRADE,
            provider="p",
            instrument="BTC-USDT",
            seq=1,
            payload=payload,
            trace_id="t-9",
        )
        await pipe.publish(event)
        await pipe.wait_idle()

    (record,) = read_dead_letters(path).records
    outcome = await replay_dead_letter(record, fixed)
    assert outcome.ok
    assert outcome.consumer_id == "sizer"
    assert seen == [("0.5", "t-9")]
    results = [a for a in outcome.answers if isinstance(a, ControlResult)]
    assert [(r.command, r.ok) for r in results] == [("submit_order", False)]
    failed_again = await replay_dead_letter(record, buggy, consumer_id="sizer-v1")
    assert not failed_again.ok
    assert failed_again.consumer_id == "sizer-v1"
    assert failed_again.error == "ValueError: sizes below one were not expected"


def test_the_demo_writes_its_dead_letters_and_serves_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, summary_path = tmp_path / "dlq.jsonl", tmp_path / "summary.json"
    argv = ["demo", "--seconds", "2", "--consumers", "5", "--headless", "--metrics-port", "0"]
    assert main([*argv, "--dlq-file", str(path), "--summary-json", str(summary_path)]) == 0
    assert "metrics: http://127.0.0.1:" in capsys.readouterr().err
    summary = orjson.loads(summary_path.read_bytes())
    assert path.exists()  # opened by the pipeline even if nothing failed this time
    records = read_dead_letters(path).records
    assert len(records) == summary["dlq"]
    assert {r.consumer_id for r in records} <= {"flaky-3"}
    assert main(["dlq", "list", "--file", str(path)]) == 0
    assert capsys.readouterr().out.endswith(f"{summary['dlq']} entries\n")
