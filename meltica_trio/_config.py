"""Pipeline configuration: a frozen value, built in code or read from TOML."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import attrs

from meltica_trio import _defaults as d
from meltica_trio._errors import ConfigError
from meltica_trio.bus import instrument_problem
from meltica_trio.lifecycle import Exhaustion
from meltica_trio.orchestrator import MergeRule


def _number(attribute: attrs.Attribute[Any], value: object) -> None:
    # bool is an int to Python, but ``lane_capacity = true`` is a mistake, not a 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(attribute.name, f"must be a number, got {value!r}")


def _integer(attribute: attrs.Attribute[Any], value: object) -> None:
    # Capacities size channels and pools: 1e3 (a TOML float) must fail here, not at open.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(attribute.name, f"must be an integer, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    _number(attribute, value)
    if not value > 0:
        raise ConfigError(attribute.name, f"must be > 0, got {value!r}")


def _not_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    _number(attribute, value)
    if not value >= 0:
        raise ConfigError(attribute.name, f"must be >= 0, got {value!r}")


def _positive_int(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    _integer(attribute, value)
    _positive(_, attribute, value)


def _not_negative_int(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    _integer(attribute, value)
    _not_negative(_, attribute, value)


def _boolean(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # ``debug = "false"`` in a file would otherwise turn debug mode on.
    if not isinstance(value, bool):
        raise ConfigError(attribute.name, f"must be true or false, got {value!r}")


def _port(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is None:
        return
    _integer(attribute, value)
    if not 0 <= value <= 65535:
        raise ConfigError(attribute.name, f"must be a TCP port 0..65535, got {value!r}")


def _host(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(attribute.name, f"must be a host name or address, got {value!r}")


def _optional_path(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        return str(os.fspath(value))
    raise ConfigError("dlq_path", f"must be a file path, got {value!r}")


def _exhaustion(value: object) -> Exhaustion:
    try:
        return Exhaustion(value)
    except ValueError:
        choices = ", ".join(repr(e.value) for e in Exhaustion)
        raise ConfigError(
            "on_pool_exhausted", f"must be one of {choices}, got {value!r}"
        ) from None


def _instruments(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise ConfigError("instruments", f"must be a list of instruments, got {value!r}")
    for instrument in value:
        problem = instrument_problem(instrument)
        if problem is not None:
            raise ConfigError("instruments", problem)
    return tuple(sorted(value))


def _merges(value: object) -> tuple[MergeRule, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError("merges", f"must be a list of merge rules, got {value!r}")
    rules = []
    for item in value:
        if isinstance(item, MergeRule):
            rules.append(item)
        elif isinstance(item, dict):
            try:
                rules.append(MergeRule(**item))
            except TypeError as exc:
                raise ConfigError("merges", str(exc)) from exc
        else:
            raise ConfigError("merges", f"a merge rule is a table, got {item!r}")
    return tuple(rules)


@attrs.frozen(kw_only=True)
class PipelineConfig:
    """Everything :func:`~meltica_trio.open_pipeline` needs to know; every field has a default.

    Attributes:
        intake_capacity: events published but not yet dispatched; ``publish`` waits beyond.
        lane_capacity: non-critical events each subscriber's lane holds before
            dropping the oldest (critical events are never dropped).
        pool_capacity: envelopes lent at once. Objects are created on demand, so a
            generous bound costs nothing until it is used; it should exceed
            ``intake_capacity + subscribers x lane_capacity``.
        pool_max_wait: seconds the dispatcher waits for the pool before its policy applies.
        on_pool_exhausted: ``"raise"`` (``PoolExhausted`` ends the pipeline, loudly)
            or ``"heap"`` (allocate, count, go on).
        reorder_window: events a stream holds while a sequence hole may still fill.
        max_lateness: seconds an event waits for a hole to fill.
        stream_idle_ttl: seconds without events before a stream's ordering state goes.
        dlq_capacity: dead letters kept.
        debug: poison recycled envelopes and raise on any lease misuse (tests, development).
        instruments: the instruments subscriptions may name (with those providers
            declare); empty means any well-formed instrument.
        merges: merge rules the orchestrator starts with (``[[merges]]`` tables in TOML).
        metrics_port: serve Prometheus metrics on this port while the pipeline runs
            (0: a free port; read ``pipe.metrics.url``); None (the default): no endpoint.
        metrics_host: the interface the metrics endpoint binds (loopback by default).
        dlq_path: append every dead letter, with its event, to this JSONL file (for
            ``meltica-trio dlq``); None (the default): the DLQ is in memory only.
    """

    intake_capacity: int = attrs.field(default=d.INTAKE_CAPACITY, validator=_positive_int)
    lane_capacity: int = attrs.field(default=d.LANE_CAPACITY, validator=_positive_int)
    pool_capacity: int = attrs.field(default=65_536, validator=_positive_int)
    pool_max_wait: float = attrs.field(default=d.POOL_MAX_WAIT, validator=_not_negative)
    on_pool_exhausted: Exhaustion = attrs.field(default=Exhaustion.RAISE, converter=_exhaustion)
    reorder_window: int = attrs.field(default=d.REORDER_WINDOW, validator=_not_negative_int)
    max_lateness: float = attrs.field(default=d.MAX_LATENESS, validator=_not_negative)
    stream_idle_ttl: float = attrs.field(default=d.STREAM_IDLE_TTL, validator=_positive)
    dlq_capacity: int = attrs.field(default=10_000, validator=_positive_int)
    debug: bool = attrs.field(default=False, validator=_boolean)
    instruments: tuple[str, ...] = attrs.field(default=(), converter=_instruments)
    merges: tuple[MergeRule, ...] = attrs.field(default=(), converter=_merges)
    metrics_port: int | None = attrs.field(default=None, validator=_port)
    metrics_host: str = attrs.field(default="127.0.0.1", validator=_host)
    dlq_path: str | None = attrs.field(default=None, converter=_optional_path)

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineConfig:
        """Read the ``[pipeline]`` table of a TOML file (or the whole file if it has none).

        Raises:
            ConfigError: unreadable TOML, an unknown key, or a bad value.
        """
        try:
            document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(str(path), f"cannot read: {exc}") from exc
        table = document.get("pipeline", document)
        if not isinstance(table, dict):
            raise ConfigError("pipeline", f"must be a table, got {table!r}")
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            known_keys = ", ".join(sorted(known))
            raise ConfigError(", ".join(unknown), f"unknown key(s); known: {known_keys}")
        try:
            return cls(**table)
        except ConfigError:
            raise  # a validator's error already names the key
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(path), str(exc)) from exc
