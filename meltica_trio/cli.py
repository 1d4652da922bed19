"""The ``meltica-trio`` command."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Sequence
from typing import Any

import orjson
import trio

from meltica_trio import __version__
from meltica_trio._demo import print_summary, run_demo, write_summary
from meltica_trio._dlq_cli import add_dlq_commands, run_dlq
from meltica_trio._errors import DecodeError
from meltica_trio.benchmarks import (
    add_bench_arguments,
    add_soak_arguments,
    run_bench_command,
    run_soak_command,
)
from meltica_trio.events import BookState
from meltica_trio.providers import format_replay_summary, replay_capture
from meltica_trio.telemetry import logging_configured
from meltica_trio.venue import run_venue_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meltica-trio", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    logs = argparse.ArgumentParser(add_help=False)
    logs.add_argument("--log-json", action="store_true", help="log as JSON lines (orjson)")
    logs.add_argument(
        "--log-level", default="WARNING", type=str.upper, help="log level (default WARNING)"
    )
    demo = commands.add_parser(
        "demo", parents=[logs], help="run the main job against in-process sources"
    )
    demo.add_argument("--seconds", type=float, default=5.0, help="how long to run (default 5)")
    demo.add_argument("--consumers", type=int, default=10, help="strategies (default 10)")
    demo.add_argument("--debug", action="store_true", help="poison recycled envelopes")
    demo.add_argument("--summary-json", metavar="PATH", help="also write the summary as JSON")
    demo.add_argument(
        "--headless", action="store_true", help="no live dashboard (the default off a terminal)"
    )
    demo.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics on this port (0: any free)"
    )
    demo.add_argument("--dlq-file", metavar="PATH", help="append dead letters to this JSONL file")
    replay = commands.add_parser(
        "replay",
        parents=[logs],
        help="replay a capture through the venue adapter and book assembler",
    )
    replay.add_argument("capture", help="a capture file (JSONL, see shared/fixtures/README.md)")
    replay.add_argument("--venue", required=True, choices=("binance", "okx"))
    replay.add_argument("--depth", type=int, default=5, help="levels per side to report")
    replay.add_argument("--books-json", metavar="PATH", help="write every book's state as JSON")
    venue = commands.add_parser(
        "venue", parents=[logs], help="serve the simulated Binance-compatible venue"
    )
    venue.add_argument("--port", type=int, default=0, help="TCP port (0: a free one, printed)")
    venue.add_argument("--seed", type=int, default=0, help="seeds the synthetic market")
    venue.add_argument(
        "--rate", type=float, default=None, help="market actions/s per symbol (0: quiet venue)"
    )
    add_dlq_commands(commands, parents=[logs])
    bench = commands.add_parser(
        "bench", parents=[logs], help="run the benchmark suite against raw trio and peers"
    )
    add_bench_arguments(bench)
    soak = commands.add_parser(
        "soak", parents=[logs], help="sustained load; judge memory growth after warm-up"
    )
    add_soak_arguments(soak)
    _add_worker_parser(commands, logs)
    return parser


def _add_worker_parser(commands: Any, logs: argparse.ArgumentParser) -> None:
    """``worker``: a consumer function as a remote consumer over Redis (the ``redis`` extra)."""
    worker = commands.add_parser(
        "worker", parents=[logs], help="run a consumer function over the Redis bridge"
    )
    worker.add_argument("--redis", required=True, metavar="URL", help="redis://host:port/db")
    worker.add_argument("--group", required=True, help="the remote consumer (its consumer group)")
    worker.add_argument("--consumer", required=True, metavar="MODULE:FUNCTION")
    worker.add_argument("--instruments", nargs="+", help="instruments wanted (default: all)")
    worker.add_argument("--kinds", nargs="+", help="event kinds wanted (default: all)")
    worker.add_argument("--providers", nargs="+", help="providers wanted (default: all)")
    worker.add_argument("--prefix", default="meltica", help="Redis key prefix (default meltica)")
    worker.add_argument("--name", help="this worker's name in the group (default host.pid)")
    worker.add_argument("--trading", action="store_true", help="start with trading switched on")
    worker.add_argument("--in-flight", type=int, default=64, help="entries held unacknowledged")
    worker.add_argument(
        "--claim-idle",
        type=float,
        default=30.0,
        help="seconds before a silent worker's entries are taken",
    )
    worker.add_argument("--stats-json", metavar="PATH", help="write statistics here on exit")
    worker.add_argument("--debug", action="store_true", help="poison recycled envelopes")


def _replay(args: argparse.Namespace) -> int:
    """Replay a capture; 0 when every book ends LIVE and nothing failed to decode."""
    try:
        result = replay_capture(args.capture, args.venue, depth=args.depth)
    except (OSError, DecodeError) as exc:
        print(f"meltica-trio replay: {exc}", file=sys.stderr)
        return 1
    print(format_replay_summary(result))
    if args.books_json:
        books = {key: book.as_dict() for key, book in result.books.items()}
        with open(args.books_json, "wb") as file:
            file.write(orjson.dumps(books, option=orjson.OPT_INDENT_2))
    live = all(book.statistics.state is BookState.LIVE for book in result.books.values())
    return 0 if live and not result.decode_errors else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``meltica-trio`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.log_level not in logging.getLevelNamesMapping():
        parser.error(f"--log-level {args.log_level!r} is not a logging level")
    with logging_configured(json=args.log_json, level=args.log_level):
        return _run(parser, args)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Carry out the parsed command."""
    if args.command == "demo":
        if args.seconds <= 0 or args.consumers < 1:
            parser.error("--seconds must be > 0 and --consumers >= 1")
        if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
            parser.error("--metrics-port must be 0..65535")
        dashboard = sys.stdout.isatty() and not args.headless
        run = functools.partial(
            run_demo,
            args.seconds,
            args.consumers,
            debug=args.debug,
            dashboard=dashboard,
            metrics_port=args.metrics_port,
            dlq_path=args.dlq_file,
        )
        summary = trio.run(run)
        print_summary(summary)
        if args.summary_json:
            write_summary(summary, args.summary_json)
        return 0 if summary["leases_outstanding"] == 0 else 1
    if args.command == "venue":
        if not 0 <= args.port <= 65535 or (args.rate is not None and args.rate < 0):
            parser.error("--port must be 0..65535 and --rate >= 0")
        return run_venue_cli(args.port, args.seed, rate=args.rate)
    if args.command == "dlq":
        return run_dlq(args)
    if args.command == "bench":
        return run_bench_command(args)
    if args.command == "soak":
        return run_soak_command(args)
    if args.command == "worker":
        try:
            from meltica_trio.bridge import run_worker_cli
        except ImportError as exc:
            parser.error(
                f"the worker needs the redis extra (pip install 'meltica-trio[redis]'): {exc}"
            )
        return run_worker_cli(args)
    if args.command == "replay":
        if args.depth < 1:
            parser.error("--depth must be at least 1")
        return _replay(args)
    return 2  # pragma: no cover (argparse rejects unknown commands)


if __name__ == "__main__":
    sys.exit(main())
