"""The base of every class a pool can lend, and the poisoned twin of a recycled object."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Final, NoReturn, Protocol, Self, TypeVar

import attrs

from meltica_trio._defaults import LEASE_SITE_DEPTH
from meltica_trio._errors import UseAfterRecycleError

if TYPE_CHECKING:
    from ._recycler import Recycler

_LIFECYCLE_DIR: Final = os.path.dirname(__file__)


class Lender(Protocol):
    """Whoever lent a pooled object; it sits in the object's ``_pool`` slot meanwhile."""

    @property
    def recycler(self) -> Recycler: ...

    @property
    def name(self) -> str: ...

    def _take_back(self, obj: Any) -> None: ...

    def _take_back_all(self, objs: list[Any]) -> None: ...


class Pooled:
    """Base class of everything an :class:`EventPool` lends.

    A subclass is an attrs class with slots and defaults for every field, and it
    says what a blank object is (``_reset``) and how to become a shallow copy of
    another (``_copy_from``). The two slots below belong to the lifecycle and are
    never set by ``__init__``, so objects built directly stay as cheap as any attrs
    object and are recognisably not pooled (``_pool`` is unset).

    ``_pool`` is also the lease state: the lender while the object is lent, ``None``
    while it rests in its pool. One slot read tells the recycler both.
    """

    __slots__ = ("_lease", "_pool")

    _pool: Lender | None
    _lease: LeaseInfo | None

    def _reset(self) -> None:
        """Return every field to its blank value, dropping references to shared data."""
        raise NotImplementedError

    def _copy_from(self, other: Self) -> None:
        """Make this object a shallow copy of ``other`` (immutable parts are shared)."""
        raise NotImplementedError


@attrs.define(eq=False)
class LeaseInfo:
    """What debug mode remembers of one lease: its number and where it began and ended."""

    pool: str
    generation: int
    acquired_at: tuple[str, ...]
    recycled_at: tuple[str, ...] = ()


def call_sites(depth: int = LEASE_SITE_DEPTH) -> tuple[str, ...]:
    """The innermost ``depth`` frames of the caller that lie outside the lifecycle package."""
    sites: list[str] = []
    frame = sys._getframe(1)
    while frame is not None and len(sites) < depth:
        code = frame.f_code
        if not code.co_filename.startswith(_LIFECYCLE_DIR):
            sites.append(f"{code.co_filename}:{frame.f_lineno} in {code.co_name}")
        frame = frame.f_back  # type: ignore[assignment]
    return tuple(sites)


P = TypeVar("P", bound=Pooled)


def misuse_error(obj: Pooled, attribute: str) -> UseAfterRecycleError:
    """The error for touching ``attribute`` of a recycled (poisoned) object."""
    info: LeaseInfo = object.__getattribute__(obj, "_lease")
    return UseAfterRecycleError(
        attribute,
        pool=info.pool,
        generation=info.generation,
        acquired_at=info.acquired_at,
        recycled_at=info.recycled_at,
    )


def poisoned_subclass(cls: type[P]) -> type[P]:
    """A subclass of ``cls`` with the same layout whose every attribute access raises.

    Debug mode switches a recycled object's ``__class__`` to it, so a holder that
    kept a reference gets :class:`UseAfterRecycleError` on its next read or write,
    and production pays nothing for the check.
    """

    def __getattribute__(self: Pooled, name: str) -> Any:
        if name == "__class__":  # isinstance() and type checks stay truthful
            return object.__getattribute__(self, name)
        raise misuse_error(self, name)

    def __setattr__(self: Pooled, name: str, value: object) -> NoReturn:
        raise misuse_error(self, name)

    def __delattr__(self: Pooled, name: str) -> NoReturn:
        raise misuse_error(self, name)

    def __repr__(self: Pooled) -> str:
        info: LeaseInfo = object.__getattribute__(self, "_lease")
        return f"<recycled {cls.__name__}, lease #{info.generation}>"

    namespace = {
        "__slots__": (),
        "__getattribute__": __getattribute__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
        "__repr__": __repr__,
        "__module__": cls.__module__,
    }
    return type(f"Recycled{cls.__name__}", (cls,), namespace)
