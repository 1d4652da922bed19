"""Replay a capture through a venue's parser and book assemblers, as a connection would.

Every ``ws`` record goes through the venue parser; depth records go to the book
assembler of their instrument (created, and started, the first time the instrument
appears); Binance REST depth snapshots (URL path ``/api/v3/depth``, any host, symbol
from the ``symbol`` query parameter) are delivered where they sit in the capture. A
second ``ws_open`` is a reconnect: every book resyncs, as the live loop would. Each
record's ``t`` is the clock for staleness. A replay cannot fetch anything, so
``RequestSnapshot`` actions are only counted, and a frame that does not parse is
counted (with the first few reasons kept) rather than raised, as a live connection
logs it and goes on.

:func:`replay_capture` is what ``meltica-trio replay`` calls;
:func:`format_replay_summary` is its printable report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal
from urllib.parse import parse_qs, urlsplit

import attrs

from meltica_trio._errors import DecodeError
from meltica_trio.events import BookState, Kind, Level

from . import binance, okx
from ._assembler import (
    STALE_AFTER,
    BookAction,
    BookAssembler,
    BookStatistics,
    Publish,
    SyncRules,
)
from ._capture import CaptureKind, CaptureRecord, read_capture
from ._parsed import ControlFrame, DepthDiff, DepthSnapshot, Parsed, VenueMessage

Venue = Literal["binance", "okx"]
"""Venues a capture can be replayed as."""

BINANCE_DEPTH_PATH: Final = "/api/v3/depth"
"""URL path of the Binance REST depth snapshot."""
DECODE_ERROR_SAMPLES: Final = 5
"""Decode errors whose reasons a replay keeps for its report."""


@attrs.frozen(kw_only=True)
class BookReport:
    """One book at the end of a replay.

    Attributes:
        key: ``"<provider>:<venue symbol>"`` (``"binance:NKNUSDT"``, ``"okx:BTC-USDT"``).
        instrument: the canonical instrument.
        bids, asks: the top levels, best first, as the venue wrote them.
        statistics: the assembler's counters (``statistics.state`` is the status).
    """

    key: str
    instrument: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    statistics: BookStatistics

    @property
    def status(self) -> BookState:
        """The book's state at the end of the replay."""
        return self.statistics.state

    def as_dict(self) -> dict[str, object]:
        """The report as plain JSON-ready data."""
        s = self.statistics
        return {
            "instrument": self.instrument,
            "status": s.state.value,
            "bids": [list(level) for level in self.bids],
            "asks": [list(level) for level in self.asks],
            "applied": s.applied,
            "gaps": s.gaps,
            "resyncs": s.resyncs,
            "checksum_ok": s.checksum_ok,
            "checksum_failed": s.checksum_failed,
        }


@attrs.frozen(kw_only=True)
class ReplayResult:
    """What a replay found.

    Attributes:
        venue: the venue the capture was replayed as.
        source: where the records came from (the file name), for reports.
        records: capture records read.
        books: one report per book, in order of first appearance.
        trades, tickers, klines: market data records parsed.
        control_frames: venue answers (subscribe acks, pongs), errors included.
        venue_errors: control frames that were errors.
        decode_errors: frames that did not parse.
        decode_error_samples: the first few of those, as ``"record N: reason"``.
        snapshot_requests: ``RequestSnapshot`` actions the assemblers emitted.
        published: book events published, by kind name.
    """

    venue: str
    source: str
    records: int
    books: Mapping[str, BookReport]
    trades: int
    tickers: int
    klines: int
    control_frames: int
    venue_errors: int
    decode_errors: int
    decode_error_samples: tuple[str, ...]
    snapshot_requests: int
    published: Mapping[str, int]

    def as_dict(self) -> dict[str, object]:
        """The result as plain JSON-ready data."""
        return {
            "venue": self.venue,
            "source": self.source,
            "records": self.records,
            "books": {key: book.as_dict() for key, book in self.books.items()},
            "trades": self.trades,
            "tickers": self.tickers,
            "klines": self.klines,
            "control_frames": self.control_frames,
            "venue_errors": self.venue_errors,
            "decode_errors": self.decode_errors,
            "decode_error_samples": list(self.decode_error_samples),
            "snapshot_requests": self.snapshot_requests,
            "published": dict(self.published),
        }


def replay_capture(
    path: str | Path,
    venue: Venue,
    depth: int = 5,
    *,
    symbols: binance.SymbolMap | None = None,
    stale_after: float = STALE_AFTER,
) -> ReplayResult:
    """Replay the capture file at ``path`` as traffic of ``venue``.

    Args:
        path: a capture JSONL file.
        venue: ``"binance"`` or ``"okx"``.
        depth: levels per side in each book report.
        symbols: Binance symbol map (default: the suffix rule).
        stale_after: seconds of capture time without book messages before STALE.

    Raises:
        DecodeError: a line of the file is not a capture record.
        OSError: the file cannot be read.
        ValueError: ``venue`` is not a known venue.
    """
    return replay_records(
        read_capture(path),
        venue,
        depth,
        symbols=symbols,
        stale_after=stale_after,
        source=Path(path).name,
    )


def replay_records(
    records: Iterable[CaptureRecord],
    venue: Venue,
    depth: int = 5,
    *,
    symbols: binance.SymbolMap | None = None,
    stale_after: float = STALE_AFTER,
    source: str = "",
) -> ReplayResult:
    """Replay capture records (e.g. edited ones, in tests); see :func:`replay_capture`."""
    if venue not in ("binance", "okx"):
        raise ValueError(f"unknown venue {venue!r}; expected 'binance' or 'okx'")
    replay = _Replay(venue, symbols or binance.DEFAULT_SYMBOLS, stale_after)
    for record in records:
        replay.feed(record)
    return replay.result(depth, source)


@attrs.define(eq=False)
class _Replay:
    venue: Venue
    symbols: binance.SymbolMap
    stale_after: float
    books: dict[str, BookAssembler] = attrs.field(factory=dict)
    counts: Counter[str] = attrs.field(factory=Counter)
    published: Counter[str] = attrs.field(factory=Counter)
    samples: list[str] = attrs.field(factory=list)

    def feed(self, record: CaptureRecord) -> None:
        self.counts["records"] += 1
        for book in self.books.values():
            self._perform(book.check_stale(record.t))
        try:
            if record.kind is CaptureKind.WS:
                self._frame(record)
            elif record.kind is CaptureKind.REST:
                self._rest(record)
            elif record.kind is CaptureKind.WS_OPEN:
                self._opened()
        except DecodeError as exc:
            self.counts["decode_errors"] += 1
            if len(self.samples) < DECODE_ERROR_SAMPLES:
                self.samples.append(f"record {self.counts['records']}: {exc}")

    def _frame(self, record: CaptureRecord) -> None:
        if self.venue == "binance":
            messages = binance.parse_frame(record.data, self.symbols)
        else:
            messages = okx.parse_frame(record.data)
        for message in messages:
            self._message(message, record.t)

    def _rest(self, record: CaptureRecord) -> None:
        url = urlsplit(record.url)
        if self.venue != "binance" or url.path != BINANCE_DEPTH_PATH:
            return
        symbol = parse_qs(url.query).get("symbol", [""])[0]
        if not symbol:
            raise DecodeError("depth snapshot URL without a symbol", record.url)
        self._message(binance.parse_depth_snapshot(record.data, symbol, self.symbols), record.t)

    def _opened(self) -> None:
        self.counts["connections"] += 1
        if self.counts["connections"] > 1:
            for book in self.books.values():
                self._perform(book.resync("connection reopened"))

    def _message(self, message: VenueMessage, t: float) -> None:
        if isinstance(message, DepthDiff):
            self._perform(self._book(message.instrument, t).on_diff(message, t))
        elif isinstance(message, DepthSnapshot):
            self._perform(self._book(message.instrument, t).on_snapshot(message, t))
        elif isinstance(message, Parsed):
            self.counts[message.kind.value] += 1
        elif isinstance(message, ControlFrame):
            self.counts["control_frames"] += 1
            self.counts["venue_errors"] += message.is_error

    def _key(self, instrument: str) -> str:
        if self.venue == "binance":
            return f"binance:{self.symbols.to_venue(instrument)}"
        return f"okx:{instrument}"

    def _book(self, instrument: str, t: float) -> BookAssembler:
        key = self._key(instrument)
        book = self.books.get(key)
        if book is None:
            rules = SyncRules.BINANCE if self.venue == "binance" else SyncRules.OKX
            book = BookAssembler(self.venue, instrument, rules, stale_after=self.stale_after)
            self.books[key] = book
            self._perform(book.start(t))
        return book

    def _perform(self, actions: list[BookAction]) -> None:
        for action in actions:
            if isinstance(action, Publish):
                self.published[action.kind.value] += 1
            else:
                self.counts["snapshot_requests"] += 1

    def result(self, depth: int, source: str) -> ReplayResult:
        reports = {
            key: BookReport(
                key=key,
                instrument=book.instrument,
                bids=book.book.top_bids(depth),
                asks=book.book.top_asks(depth),
                statistics=book.statistics(),
            )
            for key, book in self.books.items()
        }
        c = self.counts
        return ReplayResult(
            venue=self.venue,
            source=source,
            records=c["records"],
            books=MappingProxyType(reports),
            trades=c[Kind.TRADE.value],
            tickers=c[Kind.TICKER.value],
            klines=c[Kind.KLINE.value],
            control_frames=c["control_frames"],
            venue_errors=c["venue_errors"],
            decode_errors=c["decode_errors"],
            decode_error_samples=tuple(self.samples),
            snapshot_requests=c["snapshot_requests"],
            published=MappingProxyType(dict(self.published)),
        )


def format_replay_summary(result: ReplayResult) -> str:
    """A human-readable report of a replay: totals, then each book's state and ladder."""
    lines = [
        f"replay of {result.source or 'records'} as {result.venue}: {result.records} records",
        f"  market data: {result.trades} trades, {result.tickers} tickers, "
        f"{result.klines} klines; {result.control_frames} control frames "
        f"({result.venue_errors} venue errors); {result.decode_errors} decode errors",
        "  book events: "
        + ", ".join(f"{kind} {n}" for kind, n in sorted(result.published.items()))
        + f"; {result.snapshot_requests} snapshot requests",
    ]
    lines.extend(f"    {sample}" for sample in result.decode_error_samples)
    for book in result.books.values():
        lines.extend(_book_lines(book))
    return "\n".join(lines)


def _book_lines(book: BookReport) -> list[str]:
    s = book.statistics
    lines = [
        "",
        f"  {book.key} ({book.instrument}): {s.state.value}, {s.applied} applied, "
        f"{s.gaps} gaps, {s.resyncs} resyncs, checksums {s.checksum_ok} ok / "
        f"{s.checksum_failed} failed, {s.bid_levels} bids / {s.ask_levels} asks",
        f"    {'bid size':>18} {'bid':>14} | {'ask':<14} {'ask size':<18}",
    ]
    for i in range(max(len(book.bids), len(book.asks))):
        bid = book.bids[i] if i < len(book.bids) else ("", "")
        ask = book.asks[i] if i < len(book.asks) else ("", "")
        lines.append(f"    {bid[1]:>18} {bid[0]:>14} | {ask[0]:<14} {ask[1]:<18}")
    return lines
