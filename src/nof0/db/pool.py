"""Async Postgres connection pool. Built by the composition root; never at import time."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

__all__ = ["open_pool"]


async def _configure(conn: AsyncConnection) -> None:
    await conn.set_autocommit(False)


async def open_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 10.0) -> AsyncConnectionPool:
    """Open a pool whose connections return dict rows; callers own their transactions."""
    pool = AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        kwargs={"row_factory": dict_row},
        configure=_configure,
        open=False,
        name="nof0",
    )
    await pool.open(wait=True, timeout=timeout)
    return pool
