"""Rebuild the leaderboard and since-inception caches from Postgres (design 3.2 rows ``nof0:leaderboard``,
``nof0:leaderboard:cache``, ``nof0:since_inception:{model_id}``; design 3.4 cache rebuild).

* leaderboard: the rows of ``v_leaderboard`` (refresh the views first), best return first; the sorted
  set's scores and the pre-rendered body are the view's numbers unchanged, so the view, the set and
  the API agree on every number;
* since inception: each model's equity snapshots, oldest first, as ``{"timestamp": s, "value": $}``.

Redis is written after the reads, best effort: an error is logged, counted and returned in the
result, never raised (Postgres is the truth; the next run rewrites the keys).
"""

from __future__ import annotations

import msgspec
from redis import RedisError

from nof0.analytics import cache, repository as repo
from nof0.analytics.payloads import leaderboard_payload
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = [
    "PublishResult",
    "rebuild_leaderboard",
    "rebuild_since_inception",
    "republish_analytics",
    "note_redis_failure",
    "SINCE_INCEPTION_BATCH",
]

log = get_logger("nof0.analytics.publish")

SINCE_INCEPTION_BATCH = 16  # models per read + MULTI: bounds memory with long curves


class PublishResult(msgspec.Struct, kw_only=True):
    models: int = 0
    points: int = 0
    redis_error: str | None = None


async def rebuild_leaderboard(rt: Runtime) -> PublishResult:
    async with rt.pool.connection() as conn, conn.transaction():
        rows = await repo.list_leaderboard(conn)
    result = PublishResult(models=len(rows))
    scores = {r["model_id"]: r["return_pct"] for r in rows}
    try:
        await cache.publish_leaderboard(rt.redis, rt.keys, scores, leaderboard_payload(rows))
    except RedisError as exc:
        result.redis_error = note_redis_failure(rt, "leaderboard", exc)
    return result


async def rebuild_since_inception(rt: Runtime, *, batch_models: int = SINCE_INCEPTION_BATCH) -> PublishResult:
    async with rt.pool.connection() as conn, conn.transaction():
        model_ids = await repo.list_model_ids(conn)
    result = PublishResult(models=len(model_ids))
    step = max(1, batch_models)
    for i in range(0, len(model_ids), step):
        batch = model_ids[i : i + step]
        async with rt.pool.connection() as conn, conn.transaction():
            points = await repo.list_equity_points(conn, batch)
        series: dict[str, list[bytes]] = {}
        for model_id, ts_ms, equity in points:  # ordered by model, then time
            series.setdefault(model_id, []).append(cache.since_inception_point(ts_ms, equity))
        result.points += len(points)
        try:
            await cache.publish_since_inception(
                rt.redis, rt.keys, series, absent=[m for m in batch if m not in series]
            )
        except RedisError as exc:
            result.redis_error = note_redis_failure(rt, "since_inception", exc)
            break  # the other batches would fail the same way; the next run rewrites everything
    return result


async def republish_analytics(rt: Runtime) -> PublishResult:
    """``nof0:analytics:{model_id}`` and ``nof0:analytics:all`` from the stored ``model_analytics`` rows
    (design 3.4: the analytics keys come back without recomputing them)."""
    async with rt.pool.connection() as conn, conn.transaction():
        rows = await repo.list_model_analytics(conn)
    result = PublishResult(models=len(rows))
    payloads = {r["model_id"]: r["payload"] for r in rows}
    try:
        await cache.publish_analytics(rt.redis, rt.keys, payloads, {"analytics": list(payloads.values())})
    except RedisError as exc:
        result.redis_error = note_redis_failure(rt, "analytics", exc)
    return result


def note_redis_failure(rt: Runtime, what: str, exc: RedisError) -> str:
    """Log and count a Redis write that failed after the Postgres work; returns the error text."""
    log.warning("redis_write_failed", pipeline=what, error=str(exc))
    rt.metrics.redis_write_errors.labels(what).inc()
    return f"{what}: {exc}"
