"""The ``meltica-trio`` command."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Sequence

import trio

from meltica_trio import __version__
from meltica_trio._demo import print_summary, run_demo, write_summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meltica-trio", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the main job against in-process sources")
    demo.add_argument("--seconds", type=float, default=5.0, help="how long to run (default 5)")
    demo.add_argument("--consumers", type=int, default=10, help="strategies (default 10)")
    demo.add_argument("--rate", type=int, default=8000, help="events/s over all sources")
    demo.add_argument("--debug", action="store_true", help="poison recycled envelopes")
    demo.add_argument("--summary-json", metavar="PATH", help="also write the summary as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``meltica-trio`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        if args.seconds <= 0 or args.consumers < 1 or args.rate < 4:
            parser.error("--seconds must be > 0, --consumers >= 1 and --rate >= 4")
        run = functools.partial(
            run_demo, args.seconds, args.consumers, args.rate, debug=args.debug
        )
        summary = trio.run(run)
        print_summary(summary)
        if args.summary_json:
            write_summary(summary, args.summary_json)
        return 0 if summary["leases_outstanding"] == 0 else 1
    return 2  # pragma: no cover (argparse rejects unknown commands)


if __name__ == "__main__":
    sys.exit(main())
