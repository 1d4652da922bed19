"""A bounded pool of reusable objects, lent out as leases and taken back by the Recycler."""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Generic

import attrs
import trio

from meltica_trio._defaults import POOL_CAPACITY, POOL_MAX_WAIT
from meltica_trio._errors import PoolExhausted

from ._pooled import LeaseInfo, P, call_sites, poisoned_subclass

if TYPE_CHECKING:
    from ._recycler import Recycler

log = logging.getLogger(__name__)


class Exhaustion(enum.Enum):
    """What :meth:`EventPool.acquire` does when no object came back before its deadline."""

    RAISE = "raise"
    """Raise :class:`PoolExhausted`: backpressure made loud (the default)."""
    HEAP = "heap"
    """Allocate a fresh object from the heap, lend it like any other, and count it."""


@attrs.frozen(kw_only=True)
class PoolStatistics:
    """A snapshot of one pool's counters.

    Attributes:
        name: the pool's name.
        capacity: objects the pool may lend at once.
        in_use: pooled objects lent out now (heap fallbacks not included).
        high_water: the most pooled objects ever lent at once.
        acquired: leases of pooled objects granted so far.
        recycled: pooled objects taken back so far.
        waits: acquires that found the pool empty and had to wait.
        exhausted: waits that ended at the deadline with no object.
        heap_fallbacks: objects allocated from the heap under ``Exhaustion.HEAP``.
        heap_in_use: heap-allocated objects lent out now.
        utilisation: ``in_use / capacity``.
    """

    name: str
    capacity: int
    in_use: int
    high_water: int
    acquired: int
    recycled: int
    waits: int
    exhausted: int
    heap_fallbacks: int
    heap_in_use: int
    utilisation: float


@attrs.frozen
class Lease:
    """One lease still out, as a leak report shows it.

    Attributes:
        pool: the pool's name.
        type_name: the class of the lent object.
        generation: the lease's number within its pool (debug mode; 0 otherwise).
        acquired_at: where it was acquired (debug mode; empty otherwise).
    """

    pool: str
    type_name: str
    generation: int
    acquired_at: tuple[str, ...]


# Validators run at construction only: a generated __setattr__ would tax every counter
# update on the hot path.
@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class EventPool(Generic[P]):
    """A bounded pool lending objects of one :class:`Pooled` class.

    Objects are created lazily up to ``capacity`` and reused after the
    :class:`Recycler` takes them back; it is the only way back. In debug mode
    (the recycler's flag) a recycled object is poisoned and retired, and every
    acquire lends a never-used object, so any holder that kept a reference is
    caught on its next touch: no later lease can ever hand the same object to
    someone else while a stale holder still has it.

    Args:
        factory: the pooled class; it must build a blank object with no arguments.
        recycler: the recycler that takes this pool's objects back.
        capacity: how many objects may be lent at once.
        on_exhausted: the policy once ``acquire`` has waited ``max_wait``.
        max_wait: seconds ``acquire`` waits on the trio clock for a return.
        name: shown in statistics, errors and leak reports.
    """

    factory: type[P]
    recycler: Recycler = attrs.field(kw_only=True)
    capacity: int = attrs.field(default=POOL_CAPACITY, kw_only=True)
    on_exhausted: Exhaustion = attrs.field(default=Exhaustion.RAISE, kw_only=True)
    max_wait: float = attrs.field(default=POOL_MAX_WAIT, kw_only=True)
    name: str = attrs.field(kw_only=True)

    _free: list[P] = attrs.field(init=False, factory=list)
    _debug: bool = attrs.field(init=False, default=False)
    _poisoned: type[P] | None = attrs.field(init=False, default=None)
    _minted: int = attrs.field(init=False, default=0)
    _acquired: int = attrs.field(init=False, default=0)
    _recycled: int = attrs.field(init=False, default=0)
    _high_water: int = attrs.field(init=False, default=0)
    _waits: int = attrs.field(init=False, default=0)
    _exhausted: int = attrs.field(init=False, default=0)
    _heap: _HeapLender[P] = attrs.field(init=False)
    _waiters: int = attrs.field(init=False, default=0)
    _lot: trio.lowlevel.ParkingLot = attrs.field(init=False, factory=trio.lowlevel.ParkingLot)
    _generation: int = attrs.field(init=False, default=0)
    _outstanding: dict[int, P] = attrs.field(init=False, factory=dict)

    @name.default
    def _default_name(self) -> str:
        return self.factory.__name__

    @capacity.validator
    def _check_capacity(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"pool capacity must be at least 1, got {value}")

    @max_wait.validator
    def _check_max_wait(self, _: attrs.Attribute[float], value: float) -> None:
        if not value >= 0:
            raise ValueError(f"max_wait must be >= 0 seconds, got {value}")

    def __attrs_post_init__(self) -> None:
        self._debug = self.recycler.debug
        self._heap = _HeapLender(self)
        if self._debug:
            self._poisoned = poisoned_subclass(self.factory)
        self.recycler._adopt(self)

    # -- lending --------------------------------------------------------------

    def acquire_nowait(self) -> P:
        """Lend an object without blocking.

        Raises:
            trio.WouldBlock: every object is lent out (no policy applies here).
        """
        try:
            obj = self._free.pop()
        except IndexError:
            obj = self._mint()
        obj._pool = self
        self._acquired += 1
        return obj

    def duplicate_nowait(self, source: P) -> P:
        """Lend an object that is a shallow copy of ``source`` (shared immutable payload).

        Raises:
            trio.WouldBlock: every object is lent out.
        """
        # acquire_nowait() inlined: this is the fan-out hot path.
        try:
            obj = self._free.pop()
        except IndexError:
            obj = self._mint()
        obj._pool = self
        self._acquired += 1
        try:
            obj._copy_from(source)
        except BaseException:
            # A recycled (poisoned) or mistyped source: the lease never reached a holder.
            self.recycler.recycle(obj)
            raise
        return obj

    async def acquire(self, *, max_wait: float | None = None) -> P:
        """Lend an object, waiting up to ``max_wait`` seconds for one to come back.

        Once the wait ends empty-handed the pool's ``on_exhausted`` policy applies.
        (``max_wait`` is a policy deadline, not a cancellation: to bound the whole
        call, wrap it in ``trio.fail_after`` as usual.)

        Args:
            max_wait: seconds on the trio clock; the pool's ``max_wait`` if None.

        Raises:
            PoolExhausted: nothing came back in time and the policy is ``RAISE``.

        Cancellation:
            Safe: a cancelled acquire has taken nothing.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            obj = self.acquire_nowait()
        except trio.WouldBlock:
            return await self._wait_for_return(self.max_wait if max_wait is None else max_wait)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return obj

    async def duplicate(self, source: P, *, max_wait: float | None = None) -> P:
        """Like :meth:`acquire`, then make the object a shallow copy of ``source``."""
        obj = await self.acquire(max_wait=max_wait)
        try:
            obj._copy_from(source)
        except BaseException:
            self.recycler.recycle(obj)  # as in duplicate_nowait: nobody holds this lease
            raise
        return obj

    def acquire_or_allocate(self) -> P:
        """Lend an object now: from the pool, or from the heap when it is empty.

        For paths that may neither wait nor fail (a critical answer that must be
        delivered); a heap object counts as a heap fallback whatever the policy.
        """
        try:
            return self.acquire_nowait()
        except trio.WouldBlock:
            return self._heap.lend()

    def available(self) -> int:
        """How many more objects can be lent right now without waiting."""
        return self.capacity - (self._acquired - self._recycled)

    def _mint(self) -> P:
        """A new object to lend when the free list is empty, or ``trio.WouldBlock``."""
        in_use = self._acquired - self._recycled
        if in_use >= self.capacity:
            raise trio.WouldBlock
        obj = self.factory()
        if self._debug:
            self._track(obj)
            self._high_water = max(self._high_water, in_use + 1)
        else:
            self._minted += 1
        return obj

    def _track(self, obj: P) -> None:
        self._generation += 1
        obj._lease = LeaseInfo(self.name, self._generation, call_sites())
        self._outstanding[id(obj)] = obj

    async def _wait_for_return(self, max_wait: float) -> P:
        self._waits += 1
        started = trio.current_time()
        with trio.move_on_after(max_wait):
            while True:
                self._waiters += 1
                try:
                    await self._lot.park()
                finally:
                    self._waiters -= 1
                try:
                    return self.acquire_nowait()
                except trio.WouldBlock:
                    continue
        self._exhausted += 1
        if self.on_exhausted is Exhaustion.RAISE:
            raise PoolExhausted(self.name, self.capacity, trio.current_time() - started)
        return self._heap.lend()

    # -- taking back (called by the Recycler only) ----------------------------

    def _take_back(self, obj: P) -> None:
        """Reset ``obj`` and keep it for the next lease; the recycler has ended the lease."""
        obj._reset()
        self._recycled += 1
        if self._debug:
            self._retire(obj)
        else:
            self._free.append(obj)
        if self._waiters:
            self._lot.unpark()

    def _take_back_all(self, objs: list[P]) -> None:
        """:meth:`_take_back` for a run of objects, with one bookkeeping step for all."""
        for obj in objs:
            obj._reset()
        self._recycled += len(objs)
        if self._debug:
            for obj in objs:
                self._retire(obj)
        else:
            self._free.extend(objs)
        for _ in range(min(self._waiters, len(objs))):
            self._lot.unpark()

    def _retire(self, obj: P) -> None:
        assert obj._lease is not None
        assert self._poisoned is not None
        obj._lease.recycled_at = call_sites()
        del self._outstanding[id(obj)]
        obj.__class__ = self._poisoned

    # -- observing ------------------------------------------------------------

    def statistics(self) -> PoolStatistics:
        """A snapshot of this pool's counters."""
        in_use = self._acquired - self._recycled
        return PoolStatistics(
            name=self.name,
            capacity=self.capacity,
            in_use=in_use,
            high_water=self._high_water if self._debug else self._minted,
            acquired=self._acquired,
            recycled=self._recycled,
            waits=self._waits,
            exhausted=self._exhausted,
            heap_fallbacks=self._heap.lent,
            heap_in_use=self._heap.lent - self._heap.returned,
            utilisation=in_use / self.capacity,
        )

    def leases(self) -> tuple[Lease, ...]:
        """The leases still out; with their acquire sites in debug mode.

        Outside debug mode the pool keeps no per-lease record (that would cost every
        acquire), so each outstanding lease is listed anonymously.
        """
        if self._debug:
            return tuple(
                Lease(self.name, type(obj).__name__, obj._lease.generation, obj._lease.acquired_at)
                for obj in self._outstanding.values()
                if obj._lease is not None
            )
        stats = self.statistics()
        anonymous = Lease(self.name, self.factory.__name__, 0, ())
        return (anonymous,) * (stats.in_use + stats.heap_in_use)


@attrs.define(eq=False)
class _HeapLender(Generic[P]):
    """Lends heap-allocated objects for a pool whose policy is ``Exhaustion.HEAP``.

    Its objects are taken back (reset, counted) but not kept, so the pool never
    holds more than its capacity.
    """

    pool: EventPool[P]
    lent: int = 0
    returned: int = 0

    @property
    def recycler(self) -> Recycler:
        return self.pool.recycler

    @property
    def name(self) -> str:
        return self.pool.name

    def lend(self) -> P:
        obj = self.pool.factory()
        if self.pool._debug:
            self.pool._track(obj)
        obj._pool = self
        self.lent += 1
        return obj

    def _take_back(self, obj: P) -> None:
        obj._reset()
        self.returned += 1
        if self.pool._debug:
            self.pool._retire(obj)

    def _take_back_all(self, objs: list[P]) -> None:
        for obj in objs:
            self._take_back(obj)
