"""Prometheus exposition of the runtime's registry (``GET /metrics``), with the design 4.3 dashboard
gauges (table growth, cache key count, keys per pattern) sampled at scrape time. Sampling fails open:
a server that cannot be reached leaves its gauge at the last value and the scrape still answers.

Keys per pattern need a SCAN of the namespace, so they are sampled at most every
``KEY_SCAN_EVERY_S`` per process (several scrapers, or a short scrape interval, do not multiply the
SCANs) and at most ``KEY_SCAN_LIMIT`` keys are looked at.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nof0.cache.keys import COORDINATION, PATTERNS
from nof0.obs import repository as repo
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["render_metrics", "CONTENT_TYPE_LATEST", "count_keys_by_pattern", "KEY_SCAN_EVERY_S"]

log = get_logger("nof0.obs")

# every design pattern gets a sample, 0 included: a family that vanished (FLUSHALL) shows as 0, not as absent
_FAMILIES = tuple(p.name for p in PATTERNS + COORDINATION) + ("api_payload", "changes_stream", "cache_sentinel", "lock")

KEY_SCAN_EVERY_S = 60.0
KEY_SCAN_LIMIT = 1_000_000


async def count_keys_by_pattern(rt: Runtime, limit: int = KEY_SCAN_LIMIT) -> dict[str, int]:
    """Keys under the prefix per design pattern name (``cache/keys.py``; ``other`` for strays)."""
    counts = {p: 0 for p in _FAMILIES}
    seen = 0
    async for raw in rt.redis.scan_iter(match=rt.keys.scan_pattern(), count=1000):
        family = rt.keys.family_of(raw.decode() if isinstance(raw, bytes) else raw)
        label = family.name if family is not None else "other"
        counts[label] = counts.get(label, 0) + 1
        seen += 1
        if seen >= limit:
            break
    return counts


async def _sample_key_counts(rt: Runtime) -> None:
    now = time.monotonic()
    last = rt.metrics.keys_sampled_at
    if last is not None and now - last < KEY_SCAN_EVERY_S:
        return
    rt.metrics.keys_sampled_at = now
    for label, n in (await count_keys_by_pattern(rt)).items():
        rt.metrics.redis_keys_by_pattern.labels(label).set(n)


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
    try:
        await _sample_key_counts(rt)
    except Exception as exc:
        log.warning("metrics: keys per pattern not sampled", error=str(exc))
    return generate_latest(rt.metrics.registry)
