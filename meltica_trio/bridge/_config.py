"""Settings of the two ends of the bridge: the pipeline's and a worker's."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from typing import Any

import attrs

from meltica_trio._errors import ConfigError
from meltica_trio.bus._commands import frozen_or_all, kinds_or_all
from meltica_trio.events import CRITICAL_KINDS, Kind
from meltica_trio.providers import Backoff

from . import _defaults as d
from ._streams import name_problem


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(attribute.name, f"must be a number > 0, got {value!r}")


def _positive_int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(attribute.name, f"must be an integer >= 1, got {value!r}")


def _name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    problem = name_problem(attribute.name, value)
    if problem is not None:
        raise ConfigError(attribute.name, problem)


def _kinds(values: Iterable[Kind | str] | Kind | str | None) -> frozenset[Kind] | None:
    try:
        return kinds_or_all(values)
    except ValueError as exc:
        raise ConfigError("kinds", str(exc)) from exc


def default_backoff() -> Backoff:
    """Reconnect pauses for Redis: from 0.1 s, doubling, capped at 5 s, half jittered."""
    return Backoff(initial=d.RECONNECT_INITIAL, maximum=d.RECONNECT_MAX)


def default_worker_name() -> str:
    """``<host>:<pid>``: unique per live worker process, readable in XINFO CONSUMERS."""
    return f"{socket.gethostname()}.{os.getpid()}"


@attrs.frozen(kw_only=True)
class Attachment:
    """A remote consumer as the pipeline sees it: a group and what it subscribes to.

    The pipeline subscribes ``group`` on the remote consumer's behalf with these
    filters: the critical kinds they select go to the group's critical stream,
    and the group's own execution reports and control answers always do.
    ``None`` means every value, as in :class:`~meltica_trio.Subscribe`.
    """

    group: str = attrs.field(validator=_name)
    instruments: frozenset[str] | None = attrs.field(default=None, converter=frozen_or_all)
    kinds: frozenset[Kind] | None = attrs.field(default=None, converter=_kinds)
    providers: frozenset[str] | None = attrs.field(default=None, converter=frozen_or_all)

    @property
    def critical_kinds(self) -> frozenset[Kind]:
        """The critical kinds routed to the group (its filter, critical kinds only)."""
        return CRITICAL_KINDS if self.kinds is None else self.kinds & CRITICAL_KINDS


@attrs.frozen(kw_only=True)
class MarketExport:
    """Which market data the pipeline exports (``None``: every value; critical kinds never)."""

    instruments: frozenset[str] | None = attrs.field(default=None, converter=frozen_or_all)
    kinds: frozenset[Kind] | None = attrs.field(default=None, converter=_kinds)
    providers: frozenset[str] | None = attrs.field(default=None, converter=frozen_or_all)

    @property
    def market_kinds(self) -> frozenset[Kind]:
        """The kinds exported: the filter without the critical kinds."""
        kinds = frozenset(Kind) if self.kinds is None else self.kinds
        return kinds - CRITICAL_KINDS


@attrs.frozen(kw_only=True)
class BridgeConfig:
    """How a pipeline is bridged to Redis (see ``docs/explanation/bridge.md``).

    Attributes:
        url: the Redis server (``redis://host:port/db``).
        prefix: first part of every key (see :mod:`meltica_trio.bridge._streams`).
        name: this pipeline's consumer name in the control stream's group; keep it
            stable across restarts so a restarted pipeline finishes its own pending
            commands at once.
        market: the market data exported, or None to export none.
        remotes: remote consumers attached at start, besides those workers attached.
        market_maxlen: entries kept per market data stream (``MAXLEN ~``).
        critical_capacity: critical entries held while Redis is unreachable before
            the exporting consumers wait (never dropped).
        market_capacity: market data entries waiting to be written; the oldest is
            dropped (and counted) beyond it.
        write_batch: entries per XADD pipeline.
        read_count: control entries per read.
        read_block: seconds a blocking read waits.
        claim_idle: seconds before control entries of a silent bridge are claimed.
        applied_ttl: seconds a command id is remembered (duplicates refused).
        trim_interval: seconds between trims of acknowledged entries.
        backoff: pauses between attempts while Redis is unreachable.
    """

    url: str = d.REDIS_URL
    prefix: str = attrs.field(default=d.PREFIX, validator=_name)
    name: str = attrs.field(default="pipeline", validator=_name)
    market: MarketExport | None = attrs.field(factory=MarketExport)
    remotes: tuple[Attachment, ...] = ()
    market_maxlen: int = attrs.field(default=d.MARKET_MAXLEN, validator=_positive_int)
    critical_capacity: int = attrs.field(default=d.CRITICAL_CAPACITY, validator=_positive_int)
    market_capacity: int = attrs.field(default=d.MARKET_CAPACITY, validator=_positive_int)
    write_batch: int = attrs.field(default=d.WRITE_BATCH, validator=_positive_int)
    read_count: int = attrs.field(default=d.READ_COUNT, validator=_positive_int)
    read_block: float = attrs.field(default=d.READ_BLOCK, validator=_positive)
    claim_idle: float = attrs.field(default=d.CLAIM_IDLE, validator=_positive)
    applied_ttl: float = attrs.field(default=d.APPLIED_TTL, validator=_positive)
    trim_interval: float = attrs.field(default=d.TRIM_INTERVAL, validator=_positive)
    backoff: Backoff = attrs.field(factory=default_backoff)


@attrs.frozen(kw_only=True)
class WorkerConfig:
    """How a worker process runs one remote consumer (``meltica-trio worker``).

    Attributes:
        group: the remote consumer: its consumer id in the pipeline and its consumer
            group; every worker of a group shares its critical events and its orders.
        url, prefix: the Redis server and key prefix (as the pipeline's bridge).
        name: this worker's consumer name in the group (unique per live worker).
        instruments, kinds, providers: what the consumer subscribes to (None: all).
        trading: the consumer's trading switch at start (off: fail closed).
        lane_capacity: non-critical events the worker's lane holds.
        in_flight: critical entries read but not yet acknowledged, at most.
        read_block: seconds a blocking read waits.
        claim_idle: seconds a pending entry's owner may stay silent before this
            worker claims it; every worker of a group should use the same value.
        applied_ttl: seconds an applied id is remembered.
        topic_refresh: seconds between looks for new market data topics.
        command_capacity: orders queued for the control stream before refusals.
        backoff: pauses between attempts while Redis is unreachable.
        debug: poison recycled envelopes (tests, development).
    """

    group: str = attrs.field(validator=_name)
    url: str = d.REDIS_URL
    prefix: str = attrs.field(default=d.PREFIX, validator=_name)
    name: str = attrs.field(factory=default_worker_name, validator=_name)
    instruments: frozenset[str] | None = attrs.field(default=None, converter=frozen_or_all)
    kinds: frozenset[Kind] | None = attrs.field(default=None, converter=_kinds)
    providers: frozenset[str] | None = attrs.field(default=None, converter=frozen_or_all)
    trading: bool = False
    lane_capacity: int = attrs.field(default=1024, validator=_positive_int)
    in_flight: int = attrs.field(default=d.READ_COUNT, validator=_positive_int)
    read_block: float = attrs.field(default=d.READ_BLOCK, validator=_positive)
    claim_idle: float = attrs.field(default=d.CLAIM_IDLE, validator=_positive)
    applied_ttl: float = attrs.field(default=d.APPLIED_TTL, validator=_positive)
    topic_refresh: float = attrs.field(default=d.TOPIC_REFRESH, validator=_positive)
    command_capacity: int = attrs.field(default=d.COMMAND_CAPACITY, validator=_positive_int)
    backoff: Backoff = attrs.field(factory=default_backoff)
    debug: bool = False

    @property
    def attachment(self) -> Attachment:
        """What this worker asks the pipeline to subscribe on its group's behalf."""
        return Attachment(
            group=self.group,
            instruments=self.instruments,
            kinds=self.kinds,
            providers=self.providers,
        )

    def wants(self, provider: str, instrument: str, kind: Kind) -> bool:
        """Whether a market data topic is for this consumer."""
        return (
            (self.kinds is None or kind in self.kinds)
            and (self.instruments is None or instrument in self.instruments)
            and (self.providers is None or provider in self.providers)
        )
