"""The Recycler: the one path by which a lent object goes back to its pool."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import attrs

from meltica_trio._errors import (
    DoublePutError,
    ForeignObjectError,
    LifecycleError,
    UseAfterRecycleError,
)

from ._pool import EventPool, Lease, PoolStatistics
from ._pooled import LeaseInfo, Lender, Pooled

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class RecyclerStatistics:
    """Counters of a recycler, summed over its pools, with each pool's own record.

    Attributes:
        debug: whether misuse raises (debug) or is counted and refused (production).
        recycled: objects taken back, pooled and heap-allocated.
        double_puts: recycles refused because the lease had already ended.
        outstanding: leases still out across every pool.
        pools: each pool's statistics.
    """

    debug: bool
    recycled: int
    double_puts: int
    outstanding: int
    pools: tuple[PoolStatistics, ...]


@attrs.frozen
class LeakReport:
    """The leases still out across a recycler's pools.

    Attributes:
        leases: one record per outstanding lease, with acquire sites in debug mode.
    """

    leases: tuple[Lease, ...]

    def __bool__(self) -> bool:
        return bool(self.leases)

    def __str__(self) -> str:
        if not self.leases:
            return "no leases outstanding"
        lines = [f"{len(self.leases)} lease(s) outstanding:"]
        for lease in self.leases:
            where = " <- ".join(lease.acquired_at) or "(acquire site recorded in debug mode)"
            lines.append(f"  {lease.pool} #{lease.generation} {lease.type_name}: {where}")
        return "\n".join(lines)


@attrs.define(eq=False)
class Recycler:
    """Takes lent objects back: resets each, returns it to its pool, wakes a waiter.

    Every :class:`EventPool` is created against one recycler, which knows its pools
    for statistics and leak reports. ``recycle`` is the only way back into a pool.

    Args:
        debug: poison recycled objects and raise on any misuse, naming where the
            lease began and ended. Meant for tests and development; production
            counts a double put, logs a warning and refuses it.
    """

    debug: bool = False
    _pools: list[EventPool[Any]] = attrs.field(init=False, factory=list)
    _double_puts: int = attrs.field(init=False, default=0)

    def _adopt(self, pool: EventPool[Any]) -> None:
        self._pools.append(pool)

    def recycle(self, obj: Pooled) -> None:
        """Return ``obj`` to the pool that lent it. Never blocks.

        Raises:
            DoublePutError: (debug mode) the object's lease had already ended.
            ForeignObjectError: no pool of this recycler lent the object.
        """
        try:
            lender = obj._pool
        except UseAfterRecycleError:  # poisoned: debug mode retired it at its first recycle
            raise self._double_put(obj) from None
        except AttributeError:
            raise ForeignObjectError(
                type(obj).__name__, "it was not lent by any pool (built directly?)"
            ) from None
        if lender is None:
            self._refuse_double_put(obj)
        elif lender.recycler is not self:
            raise ForeignObjectError(
                type(obj).__name__, f"pool {lender.name!r} has another recycler"
            )
        else:
            obj._pool = None
            lender._take_back(obj)

    def recycle_all(self, objs: Iterable[Pooled]) -> None:
        """Recycle every object; see :meth:`recycle`.

        Each object is attempted even if one of them is misused; the first error
        is raised once all the others are back.
        """
        failure: LifecycleError | None = None
        # Consecutive objects of one lender (a consumer's batch, usually all of it)
        # go back as one run: one call and one bookkeeping step per run.
        run: list[Pooled] = []
        run_lender: Lender | None = None
        for obj in objs:
            try:
                lender = obj._pool
            except (UseAfterRecycleError, AttributeError):
                lender = None
            if lender is not None and lender is run_lender:
                obj._pool = None
                run.append(obj)
                continue
            if run_lender is not None:
                run_lender._take_back_all(run)
                run, run_lender = [], None
            if lender is not None and lender.recycler is self:
                obj._pool = None
                run, run_lender = [obj], lender
                continue
            try:
                self.recycle(obj)  # the slow path names the misuse
            except LifecycleError as exc:
                failure = failure or exc
        if run_lender is not None:
            run_lender._take_back_all(run)
        if failure is not None:
            raise failure

    def _double_put(self, obj: Pooled) -> DoublePutError:
        self._double_puts += 1
        info: LeaseInfo = object.__getattribute__(obj, "_lease")
        return DoublePutError(
            pool=info.pool,
            generation=info.generation,
            acquired_at=info.acquired_at,
            recycled_at=info.recycled_at,
        )

    def _refuse_double_put(self, obj: Pooled) -> None:
        # Production: the object already rests in its pool; taking it back again would
        # hand it to two holders later. Count, warn, and leave the pool as it is.
        self._double_puts += 1
        log.warning("refused a double put of %s (lease already ended)", type(obj).__name__)

    def statistics(self) -> RecyclerStatistics:
        """Counters summed over every pool of this recycler, and each pool's record."""
        pools = tuple(pool.statistics() for pool in self._pools)
        return RecyclerStatistics(
            debug=self.debug,
            recycled=sum(p.recycled + (p.heap_fallbacks - p.heap_in_use) for p in pools),
            double_puts=self._double_puts,
            outstanding=sum(p.in_use + p.heap_in_use for p in pools),
            pools=pools,
        )

    def leak_report(self) -> LeakReport:
        """The leases still out across every pool of this recycler."""
        return LeakReport(tuple(lease for pool in self._pools for lease in pool.leases()))
