"""Reads that may go to a streaming replica (docs/scaling.md): the API's fallback reads.

``ReadPools.connection()`` lends a replica connection while the replica is alive and no further behind
than ``max_lag_s`` (``postgres.replica_max_lag``), the primary's otherwise. The lag is measured at most
once a second, on the borrowed connection (``pg_last_xact_replay_timestamp``; 0 when everything received
is replayed, as on an idle primary), and exported as ``nof0_pg_replica_lag_seconds``. A replica that
cannot lend a connection or answer is skipped for ``RETRY_S``, then tried again. Writes, and reads that
must see this process's own writes, use the primary pool directly (``rt.pool``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from nof0.obs.logging import get_logger
from nof0.obs.metrics import Metrics

__all__ = ["ReadPools", "LAG_SQL", "RETRY_S", "CHECK_EVERY_S", "BORROW_TIMEOUT_S"]

log = get_logger("nof0.db.replica")

LAG_SQL = """SELECT CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0.0
            ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0.0)::float8
            END AS lag_s"""
RETRY_S = 5.0  # a dead or lagging replica is skipped this long before it is tried again
CHECK_EVERY_S = 1.0  # lag measured at most this often
BORROW_TIMEOUT_S = 2.0  # a replica that cannot lend a connection this fast counts as down


class ReadPools:
    def __init__(self, primary: AsyncConnectionPool, replica: AsyncConnectionPool | None, *, max_lag_s: float,
                 metrics: Metrics, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.primary, self.replica, self.max_lag_s = primary, replica, max_lag_s
        self._metrics, self._now = metrics, monotonic
        self._skip_until = 0.0
        self._checked_at = float("-inf")
        self.lag_s: float | None = None

    def replica_in_use(self) -> bool:
        return self.replica is not None and self._now() >= self._skip_until

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        if self.replica_in_use():
            try:
                async with self.replica.connection(timeout=BORROW_TIMEOUT_S) as conn:  # type: ignore[union-attr]
                    fresh = await self._fresh_enough(conn)
                    if fresh:
                        yield conn
                        return
            except (PoolTimeout, psycopg.OperationalError) as exc:
                self._skip("down", error=f"{type(exc).__name__}: {exc}")
        async with self.primary.connection() as conn:
            yield conn

    async def _fresh_enough(self, conn: AsyncConnection) -> bool:
        now = self._now()
        if now - self._checked_at < CHECK_EVERY_S:
            return True
        async with conn.transaction():
            row = await (await conn.execute(LAG_SQL)).fetchone()
        lag = float(row["lag_s"] if isinstance(row, dict) else row[0])
        self.lag_s, self._checked_at = lag, now
        self._metrics.pg_replica_lag.set(lag)
        if lag > self.max_lag_s:
            self._skip("lagging", lag_s=round(lag, 3), max_lag_s=self.max_lag_s)
            return False
        return True

    def _skip(self, why: str, **fields: object) -> None:
        if self._now() >= self._skip_until:  # once per episode, not once per request
            log.warning("replica skipped, reading from the primary", why=why, retry_s=RETRY_S, **fields)
        self._metrics.pg_replica_fallbacks.labels(why).inc()
        self._skip_until = self._now() + RETRY_S
        self._checked_at = float("-inf")
