"""Structured JSON logs: the formatter, switching it on, and the ids real log lines carry."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio

from meltica_trio import (
    ConsumerContext,
    Event,
    ExecReport,
    JsonFormatter,
    Kind,
    OrderState,
    Side,
    Trade,
    configure_logging,
    log_fields,
)
from meltica_trio.cli import main
from meltica_trio.orders import (
    OrderRef,
    StreamItem,
    VenueOrder,
    VenueUnavailableError,
    VenueUpdate,
)
from meltica_trio.telemetry import DeadLetterQueue, encode_dead_letter
from meltica_trio.testing import assert_balanced, open_test_pipeline

ReadLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_log() -> Iterator[ReadLines]:
    """JSON lines of everything ``meltica_trio`` logs at INFO and above during the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("meltica_trio")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lambda: [orjson.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger back as it was after a test that configures it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("meltica_trio.test", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    record.created = 1_700_000_000.25
    return record


def test_a_line_has_the_fixed_keys_first_then_every_extra() -> None:
    line = JsonFormatter().format(
        _record("lag %d on %s", 3, "lane", consumer="c1", trace_id="t-9", decision_id=None)
    )
    assert line == (
        '{"ts":"2023-11-14T22:13:20.250000Z","level":"WARNING","logger":"meltica_trio.test",'
        '"message":"lag 3 on lane","consumer":"c1","trace_id":"t-9"}'
    )


def test_an_extra_orjson_cannot_encode_is_written_as_text() -> None:
    document = orjson.loads(JsonFormatter().format(_record("x", price=Decimal("1.50"))))
    assert document["price"] == "1.50"


def test_an_extra_cannot_replace_the_fixed_keys() -> None:
    # logging itself refuses extra={"message": ...}; a formatter must not be fooled
    # by an attribute set on the record some other way either.
    document = orjson.loads(JsonFormatter().format(_record("real", level="fake", ts="fake")))
    assert (document["level"], document["message"]) == ("WARNING", "real")
    assert document["ts"].startswith("2023-11-14")


def test_a_traceback_goes_in_exc() -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        record = _record("failed")
        record.exc_info = sys.exc_info()
    document = orjson.loads(JsonFormatter().format(record))
    assert document["exc"].startswith("Traceback (most recent call last):")
    assert document["exc"].endswith("KeyError: 'missing'")


def test_log_fields_leaves_out_what_is_unknown() -> None:
    assert log_fields(trace_id="t", provider=None, consumer="c", seq=None, kind="trade") == {
        "trace_id": "t",
        "consumer": "c",
        "kind": "trade",
    }


def test_configure_logging_replaces_the_root_handlers(root_logging: None) -> None:
    stream = io.StringIO()
    handler = configure_logging(json=True, level="INFO", stream=stream)
    assert logging.getLogger().handlers == [handler]
    logging.getLogger("meltica_trio.x").info("hello %s", "there", extra={"provider": "okx"})
    document = orjson.loads(stream.getvalue())
    assert (document["message"], document["provider"]) == ("hello there", "okx")

    text = io.StringIO()
    configure_logging(level=logging.WARNING, stream=text)
    logging.getLogger("meltica_trio.x").info("hidden")
    logging.getLogger("meltica_trio.x").warning("shown")
    assert text.getvalue() == "WARNING meltica_trio.x: shown\n"


def test_the_cli_logs_json_while_it_runs_and_then_restores_logging(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A replayed function that logs: its line reaches stderr as JSON, with its extras.
    module = tmp_path / "noisy_strategy.py"
    module.write_text(
        "import logging\n"
        "def handle(event, ctx):\n"
        "    logging.getLogger('strategy').info('saw %s', event.seq,"
        " extra={'consumer': ctx.consumer_id, 'trace_id': event.trace_id})\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    event = Event(
        event_id=1,
        kind=Kind.TRADE,
        provider="p",
        instrument="BTC-USDT",
        seq=5,
        trace_id="t-5",
        payload=Trade(price="1", size="1", side=Side.BUY, trade_id="1", trade_ts=1),
    )
    letter = DeadLetterQueue().record("c", event, ValueError("x"), 0)
    path = tmp_path / "dlq.jsonl"
    path.write_bytes(encode_dead_letter(letter, event))
    root = logging.getLogger()
    before = (list(root.handlers), root.level)

    argv = ["dlq", "replay", letter.letter_id, "--file", str(path)]
    argv += ["--consumer", "noisy_strategy:handle", "--log-json", "--log-level", "info"]
    assert main(argv) == 0

    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(d["logger"], d["message"], d["consumer"], d["trace_id"]) for d in lines] == [
        ("strategy", "saw 5", "c", "t-5")
    ]
    assert (list(root.handlers), root.level) == before


def test_a_bad_log_level_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dlq", "list", "--log-level", "chatty"])
    assert "is not a logging level" in capsys.readouterr().err


async def test_a_consumer_error_line_carries_the_event_and_consumer_ids(
    json_log: ReadLines,
) -> None:
    def failing(event: Event, ctx: ConsumerContext) -> None:
        raise ValueError("no liquidity")

    async with open_test_pipeline() as pipe:
        await pipe.subscribe("momentum", failing)
        payload = Trade(price="10", size="1", side=Side.BUY, trade_id="1", trade_ts=1)
        event = pipe.new_event(
            kind=Kind.TRADE,
            provider="binance",
            instrument="BTC-USDT",
            seq=41,
            payload=payload,
            trace_id="trace-41",
            decision_id="decision-41",
        )
        await pipe.publish(event)
        await pipe.wait_idle()
        (letter,) = pipe.dlq.entries()
    assert_balanced(pipe)

    (line,) = [d for d in json_log() if d["logger"] == "meltica_trio.consumers._runtime"]
    assert line["level"] == "ERROR"
    assert line["consumer"] == "momentum"
    assert (line["trace_id"], line["decision_id"]) == ("trace-41", "decision-41")
    assert (line["provider"], line["instrument"], line["seq"]) == ("binance", "BTC-USDT", 41)
    assert (line["kind"], line["letter_id"]) == ("trade", letter.letter_id)
    assert line["exc"].endswith("ValueError: no liquidity")


@attrs.define(eq=False)
class _FlakyVenue:
    """A venue whose first submit times out after placing the order (outcome unknown)."""

    provider: str = "fake"
    settle_time: float = 0.0
    placed: dict[str, VenueOrder] = attrs.field(factory=dict)

    def _ack(self, vcoid: str) -> VenueUpdate:
        return VenueUpdate(
            venue_client_order_id=vcoid,
            exec_id=f"{vcoid}:ack",
            state=OrderState.ACK,
            filled="0",
            venue_order_id="1",
        )

    async def submit(self, order: VenueOrder) -> VenueUpdate:
        await trio.lowlevel.checkpoint()
        self.placed[order.venue_client_order_id] = order
        raise VenueUnavailableError(self.provider, "POST timed out")

    async def cancel(self, ref: OrderRef) -> VenueUpdate:  # pragma: no cover (unused)
        raise AssertionError("no cancel in this test")

    async def query(self, ref: OrderRef) -> VenueUpdate:
        await trio.lowlevel.checkpoint()
        return self._ack(ref.venue_client_order_id)

    async def serve_updates(
        self,
        send: trio.MemorySendChannel[StreamItem],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with send:
            task_status.started()
            await trio.sleep_forever()


async def test_an_orders_log_lines_carry_its_decision_and_trace_ids(
    json_log: ReadLines, autojump_clock: trio.testing.MockClock
) -> None:
    acked = trio.Event()
    sent = False

    def trader(event: Event, ctx: ConsumerContext) -> None:
        nonlocal sent
        if isinstance(event.payload, ExecReport) and event.payload.state is OrderState.ACK:
            acked.set()
        elif isinstance(event.payload, Trade) and not sent:
            sent = True
            ctx.submit_order(
                client_order_id="order-1",
                provider="fake",
                instrument="BTC-USDT",
                side=Side.BUY,
                quantity="0.5",
                price="100",
                decision_id="decision-7",
                trace_id="trace-7",
            )

    async with open_test_pipeline(order_clients=[_FlakyVenue()]) as pipe:
        await pipe.subscribe("trader", trader)
        await pipe.control.set_trading_switch("trader", True)
        payload = Trade(price="100", size="1", side=Side.SELL, trade_id="1", trade_ts=1)
        event = pipe.new_event(
            kind=Kind.TRADE, provider="fake", instrument="BTC-USDT", seq=1, payload=payload
        )
        await pipe.publish(event)
        with trio.fail_after(30):
            await acked.wait()
        await pipe.wait_idle()
    assert_balanced(pipe)

    lines = [d for d in json_log() if d["logger"] == "meltica_trio.orders._gateway"]
    messages = [line["message"] for line in lines]
    assert any("submit of" in m and "uncertain" in m for m in messages), messages
    assert any(" ack, filled 0 of 0.5" in m for m in messages), messages
    for line in lines:
        assert line["consumer"] == "trader"
        assert (line["decision_id"], line["trace_id"]) == ("decision-7", "trace-7")
        assert (line["provider"], line["instrument"]) == ("fake", "BTC-USDT")
        assert line["client_order_id"] == "order-1"
