"""Event kinds and the delivery class each one is held to on the Data Bus."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final


class DeliveryClass(enum.StrEnum):
    """How a lane treats a kind when its subscriber lags (DESIGN.md section 3)."""

    CRITICAL = "critical"
    """Never dropped, coalesced or filtered; delivered in order."""
    SEQUENCED = "sequenced"
    """In order; on overflow the oldest are dropped and the gap is reported."""
    LATEST = "latest"
    """Latest wins per (kind, provider, instrument): a queued one is replaced."""


class Kind(enum.StrEnum):
    """What an event is; its value is the name used on the wire."""

    TRADE = "trade"
    BOOK_SNAPSHOT = "book_snapshot"
    BOOK_DELTA = "book_delta"
    TICKER = "ticker"
    KLINE = "kline"
    MERGED = "merged"
    EXEC_REPORT = "exec_report"
    CONTROL_ACK = "control_ack"
    CONTROL_RESULT = "control_result"
    BOOK_STATUS = "book_status"

    @property
    def delivery_class(self) -> DeliveryClass:
        """The delivery class lanes enforce for this kind."""
        return DELIVERY_CLASS[self]

    @property
    def is_critical(self) -> bool:
        """True for kinds that may never be dropped, coalesced or filtered."""
        return self in CRITICAL_KINDS


DELIVERY_CLASS: Final[Mapping[Kind, DeliveryClass]] = MappingProxyType(
    {
        Kind.EXEC_REPORT: DeliveryClass.CRITICAL,
        Kind.CONTROL_ACK: DeliveryClass.CRITICAL,
        Kind.CONTROL_RESULT: DeliveryClass.CRITICAL,
        Kind.BOOK_STATUS: DeliveryClass.CRITICAL,
        Kind.TRADE: DeliveryClass.SEQUENCED,
        Kind.BOOK_DELTA: DeliveryClass.SEQUENCED,
        Kind.TICKER: DeliveryClass.LATEST,
        Kind.BOOK_SNAPSHOT: DeliveryClass.LATEST,
        Kind.KLINE: DeliveryClass.LATEST,
        Kind.MERGED: DeliveryClass.LATEST,
    }
)
"""Each kind's delivery class."""

# Hot paths test membership in these (one hash probe) rather than look the class up.
CRITICAL_KINDS: Final = frozenset(
    k for k, c in DELIVERY_CLASS.items() if c is DeliveryClass.CRITICAL
)
"""Kinds that are never dropped, coalesced or filtered."""
LATEST_KINDS: Final = frozenset(k for k, c in DELIVERY_CLASS.items() if c is DeliveryClass.LATEST)
"""Kinds where the newest replaces a queued one."""
