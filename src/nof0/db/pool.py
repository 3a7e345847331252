"""Async Postgres connection pool. Built by the composition root; never at import time."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

__all__ = ["open_pool", "RECONNECT_S"]

# How long the pool retries a failed connection attempt in the background (with backoff) before it
# gives up until the next request asks for a connection. psycopg_pool's default (5 minutes, the
# delay doubling from 1 s) means that after an outage of a minute the next attempt may be a minute
# away while the server is already back; with a short window, a request after the server returns
# starts a fresh attempt at once.
RECONNECT_S = 2.0


async def _configure(conn: AsyncConnection) -> None:
    await conn.set_autocommit(False)


async def open_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 10.0,
                    cursor_factory: type | None = None) -> AsyncConnectionPool:
    """Open a pool whose connections return dict rows; callers own their transactions. ``cursor_factory``
    (the runtime's timed cursor, obs/instrument.py) measures every statement.

    A connection is checked (one empty query) when it leaves the pool: after a Postgres restart the
    pooled connections are dead, and the first request must get a new one, not an error.
    """
    pool = AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        kwargs={"row_factory": dict_row, **({"cursor_factory": cursor_factory} if cursor_factory else {})},
        configure=_configure,
        check=AsyncConnectionPool.check_connection,
        reconnect_timeout=RECONNECT_S,
        open=False,
        name="nof0",
    )
    await pool.open(wait=True, timeout=timeout)
    return pool
