"""The names of every Redis key the bridge uses, built in one place.

With the default prefix ``meltica``::

    meltica:md:<provider>:<instrument>:<kind>   market data, one stream per topic (MAXLEN ~)
    meltica:topics                              SET of the market data streams written
    meltica:crit:<group>                        critical events of one remote consumer,
                                                read by the consumer group <group>
    meltica:control                             commands and attachments from workers,
                                                read by the consumer group "bridge"
    meltica:remotes                             HASH group -> attachment (its filters)
    meltica:applied:<group>:<apply id>          "applied" marks, for exactly-once apply
    meltica:dlq:<group>                         dead letters of a group (or "bridge")
"""

from __future__ import annotations

import re
from typing import Final

import attrs

from meltica_trio.events import Kind

from ._defaults import PREFIX

_NAME: Final = re.compile(r"[A-Za-z0-9_.\-]+")
"""Groups and prefixes: no ``:`` (the separator), no spaces, nothing a shell would mangle."""


def name_problem(what: str, value: object) -> str | None:
    """Why ``value`` cannot be a group name or prefix, or None if it can."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        return f"{what} {value!r} must be letters, digits, '_', '.' or '-'"
    return None


@attrs.frozen
class StreamNames:
    """Key names under one prefix.

    Raises:
        ValueError: a prefix with characters outside ``[A-Za-z0-9_.-]``.
    """

    prefix: str = attrs.field(default=PREFIX)

    @prefix.validator
    def _check_prefix(self, _: attrs.Attribute[str], value: str) -> None:
        problem = name_problem("prefix", value)
        if problem is not None:
            raise ValueError(problem)

    def market(self, provider: str, instrument: str, kind: Kind) -> str:
        """The stream of one market data topic."""
        return f"{self.prefix}:md:{provider}:{instrument}:{kind.value}"

    def parse_market(self, key: str) -> tuple[str, str, Kind] | None:
        """(provider, instrument, kind) of a market data stream name, or None."""
        head = f"{self.prefix}:md:"
        if not key.startswith(head):
            return None
        parts = key[len(head) :].rsplit(":", 2)
        if len(parts) != 3:
            return None
        provider, instrument, kind = parts
        try:
            return provider, instrument, Kind(kind)
        except ValueError:
            return None

    @property
    def topics(self) -> str:
        """The SET of market data stream names the exporter has written."""
        return f"{self.prefix}:topics"

    def critical(self, group: str) -> str:
        """The critical stream of one remote consumer (consumer group ``group``)."""
        return f"{self.prefix}:crit:{group}"

    @property
    def control(self) -> str:
        """The stream of commands and attachments from workers to the pipeline."""
        return f"{self.prefix}:control"

    @property
    def remotes(self) -> str:
        """The HASH of attached remote consumers: group -> attachment JSON."""
        return f"{self.prefix}:remotes"

    def applied(self, group: str, apply_id: str) -> str:
        """The mark that says ``apply_id`` is being or has been applied for ``group``."""
        return f"{self.prefix}:applied:{group}:{apply_id}"

    def dlq(self, owner: str) -> str:
        """The dead-letter stream of a group (or of the pipeline's bridge)."""
        return f"{self.prefix}:dlq:{owner}"
