"""Shared fixtures: every test gets a debug-mode recycler and checks it for leaks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meltica_trio import Event, EventPool, Recycler


@pytest.fixture
def recycler() -> Iterator[Recycler]:
    """A debug-mode recycler; the test fails if any lease is still out at its end."""
    recycler = Recycler(debug=True)
    yield recycler
    report = recycler.leak_report()
    assert not report, str(report)


@pytest.fixture
def pool(recycler: Recycler) -> EventPool[Event]:
    """A small debug-mode event pool."""
    return EventPool(Event, recycler=recycler, capacity=8, name="test")
