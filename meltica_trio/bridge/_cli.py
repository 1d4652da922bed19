"""``meltica-trio worker``: run a consumer function as a remote consumer until signalled."""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import signal
import sys
import typing
from pathlib import Path

import attrs
import orjson
import trio

from meltica_trio.consumers import Handler

from ._config import WorkerConfig, default_worker_name
from ._worker import open_worker

log = logging.getLogger(__name__)


def load_handler(spec: str) -> Handler:
    """The function named by ``module:function`` (``function`` may be dotted: ``Cls.method``).

    Raises:
        ValueError: the spec is not ``module:name``, the module does not import, the
            name is missing, or it is not callable.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{spec!r} is not module:function")
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"{module_name!r} has no {attribute!r}") from None
    if not callable(target):
        raise ValueError(f"{spec} is not callable")
    return typing.cast(Handler, target)


def worker_config(args: argparse.Namespace) -> WorkerConfig:
    """The worker's settings from the ``worker`` subcommand's arguments."""
    return WorkerConfig(
        group=args.group,
        url=args.redis,
        prefix=args.prefix,
        name=args.name or default_worker_name(),
        instruments=args.instruments,
        kinds=args.kinds,
        providers=args.providers,
        trading=args.trading,
        in_flight=args.in_flight,
        claim_idle=args.claim_idle,
        debug=args.debug,
    )


async def serve_until_signalled(
    config: WorkerConfig, fn: Handler, stats_json: Path | None
) -> None:
    """Run the worker until SIGINT or SIGTERM, then close it and write its statistics."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_worker(config, fn) as worker:
            log.warning(
                "worker %s of group %s on %s (prefix %s)",
                config.name,
                config.group,
                config.url,
                config.prefix,
            )
            async for signum in signals:
                log.warning("worker %s: %s, closing", config.name, signal.Signals(signum).name)
                break
        if stats_json is not None:
            document = attrs.asdict(worker.statistics())
            await trio.Path(stats_json).write_bytes(
                orjson.dumps(document, option=orjson.OPT_INDENT_2)
            )


def run_worker_cli(args: argparse.Namespace) -> int:
    """Body of ``meltica-trio worker``; returns the exit status."""
    try:
        fn = load_handler(args.consumer)
        config = worker_config(args)
    except ValueError as exc:
        print(f"meltica-trio worker: {exc}", file=sys.stderr)
        return 2
    stats = Path(args.stats_json) if args.stats_json else None
    trio.run(functools.partial(serve_until_signalled, config, fn, stats))
    return 0
