"""Materialized view refresh (design 2.3, 2.5): ``SELECT refresh_views_nof0()``.

The SQL function itself serialises concurrent callers with an advisory lock, so two processes (or
the scheduler and ``nof0 refresh-views``) never refresh at once.
"""

from __future__ import annotations

import time

from nof0.jobs import repository as repo
from nof0.runtime import Runtime

__all__ = ["refresh_views"]


async def refresh_views(rt: Runtime) -> float:
    """Refresh all three views CONCURRENTLY; returns the duration in seconds."""
    started = time.perf_counter()
    try:
        async with rt.pool.connection() as conn, conn.transaction():
            await repo.refresh_views_nof0(conn)
    except Exception:
        rt.metrics.refresh_views.labels("failed").inc()
        raise
    rt.metrics.refresh_views.labels("ok").inc()
    return time.perf_counter() - started
