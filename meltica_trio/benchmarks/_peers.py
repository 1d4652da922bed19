"""The libraries the suite measures us against, found at run time, never required.

Peers live in the ``bench`` extra (``pip install 'meltica-trio[bench]'``). Each is
imported by name when the suite starts; one that is missing (or turned off with
``--without``) is reported with the reason and the cases that need it are left out,
while the rest of the suite runs.

* ``nautilus_trader``: its ``MessageBus`` (Cython), the anchor for an in-process trading
  event bus. Built as its own test kit builds one: ``MessageBus(trader_id=TraderId(...),
  clock=LiveClock())``; ``subscribe(topic, handler)`` then ``publish(topic, msg)`` calls
  every matching handler in turn, synchronously, in the publisher's call.
* ``order_book``: the C order book that cryptofeed's feed handler keeps its books in
  (cryptofeed's ``OrderBook`` wraps one), with its OKX checksum.
* ``matplotlib``: the PNG plots.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Collection, Iterable
from types import ModuleType
from typing import Any, Final

import attrs

NAUTILUS: Final = "nautilus_trader"
ORDER_BOOK: Final = "order_book"
MATPLOTLIB: Final = "matplotlib"
PEERS: Final = (NAUTILUS, ORDER_BOOK, MATPLOTLIB)
"""Every optional package, by import name."""
DISTRIBUTIONS: Final = {
    NAUTILUS: "nautilus_trader",
    ORDER_BOOK: "order-book",
    MATPLOTLIB: "matplotlib",
}
"""Their names on PyPI."""
NAUTILUS_TRADER_ID: Final = "BENCH-001"


@attrs.frozen(kw_only=True)
class Peer:
    """One optional package as the suite found it.

    Attributes:
        name: its import name.
        version: its installed version, ``None`` when it is unavailable.
        missing: why it is unavailable (``None`` when available).
    """

    name: str
    version: str | None
    missing: str | None

    @property
    def available(self) -> bool:
        return self.missing is None


def find_peer(name: str, *, without: Collection[str] = ()) -> Peer:
    """Import ``name`` to see whether it works here; never raises."""
    if name in without:
        return Peer(name=name, version=None, missing="turned off with --without")
    try:
        importlib.import_module(name)
    except ImportError as exc:
        hint = f"pip install 'meltica-trio[bench]' (or {DISTRIBUTIONS.get(name, name)})"
        return Peer(name=name, version=None, missing=f"not installed ({exc}); {hint}")
    try:
        version = importlib.metadata.version(DISTRIBUTIONS.get(name, name))
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return Peer(name=name, version=version, missing=None)


def find_peers(names: Iterable[str] = PEERS, *, without: Collection[str] = ()) -> dict[str, Peer]:
    return {name: find_peer(name, without=without) for name in names}


def nautilus_bus() -> tuple[Any, Callable[[str, Callable[[Any], None]], None]]:
    """A fresh nautilus_trader ``MessageBus`` and its ``subscribe``.

    Raises:
        ImportError: nautilus_trader is not installed.
    """
    component = importlib.import_module("nautilus_trader.common.component")
    identifiers = importlib.import_module("nautilus_trader.model.identifiers")
    bus = component.MessageBus(
        trader_id=identifiers.TraderId(NAUTILUS_TRADER_ID), clock=component.LiveClock()
    )
    return bus, bus.subscribe


def order_book_module() -> ModuleType:
    """The ``order_book`` C extension.

    Raises:
        ImportError: it is not installed.
    """
    return importlib.import_module(ORDER_BOOK)
