"""Prometheus exposition of the runtime's registry (``GET /metrics``), with the design 4.3 dashboard
gauges (table growth, cache key count) sampled at scrape time. Sampling fails open: a server that
cannot be reached leaves its gauge at the last value and the scrape still answers.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nof0.obs import repository as repo
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["render_metrics", "CONTENT_TYPE_LATEST"]

log = get_logger("nof0.obs")


async def render_metrics(rt: Runtime) -> bytes:
    try:
        async with rt.pool.connection(timeout=2) as conn, conn.transaction():
            for row in await repo.list_table_row_estimates(conn):
                rt.metrics.table_rows.labels(row["table"]).set(row["rows"])
    except Exception as exc:  # a scrape must not fail because a gauge could not be sampled
        log.warning("metrics: table sizes not sampled", error=str(exc))
    try:
        rt.metrics.redis_keys.set(await rt.redis.dbsize())
    except Exception as exc:
        log.warning("metrics: redis key count not sampled", error=str(exc))
    return generate_latest(rt.metrics.registry)
