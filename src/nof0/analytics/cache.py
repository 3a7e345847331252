"""Redis values of the derived data (design 3.2): analytics, leaderboard and since-inception curves.

Shapes are those of ``docs/redis-values.md``. Every write is one MULTI/EXEC, so a reader sees the old
value or the new one, never a half-written list or sorted set (a DEL + ZADD outside a transaction
would show an empty leaderboard for a moment). TTLs come from the keyspace's classes.

These functions raise ``redis.RedisError``; the callers (jobs, after the Postgres commit) log and
count the error and carry on: Redis is rebuilt from Postgres on the next run (design 3.4).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from redis.asyncio import Redis

from nof0.cache.keys import Keyspace
from nof0.cache.write import encode, multi, replace_list, set_json

__all__ = [
    "encode",
    "publish_analytics",
    "publish_leaderboard",
    "publish_since_inception",
    "since_inception_point",
]

async def publish_analytics(
    redis: Redis, keys: Keyspace, payloads: Mapping[str, Mapping[str, Any]], all_payload: Mapping[str, Any]
) -> None:
    """``nof0:analytics:{model_id}`` for each computed model and ``nof0:analytics:all``."""
    async with multi(redis) as pipe:
        for model_id, payload in payloads.items():
            set_json(pipe, keys.analytics(model_id), payload)
        set_json(pipe, keys.analytics_all(), all_payload)
        await pipe.execute()


async def publish_leaderboard(
    redis: Redis, keys: Keyspace, scores: Mapping[str, float], body: Mapping[str, Any]
) -> None:
    """Rewrite the ``nof0:leaderboard`` sorted set (member model id, score return_pct) and its
    pre-rendered body. DEL first, so models that left the leaderboard leave the set too."""
    board, cache = keys.leaderboard(), keys.leaderboard_cache()
    async with multi(redis) as pipe:
        pipe.delete(board.name)
        if scores:
            pipe.zadd(board.name, dict(scores))
            pipe.pexpire(board.name, board.ttl_ms)
        set_json(pipe, cache, body)
        await pipe.execute()


def since_inception_point(ts_ms: int, equity_usd: float) -> bytes:
    """One element of ``nof0:since_inception:{model_id}``: time in seconds, equity in dollars."""
    return encode({"timestamp": ts_ms / 1000, "value": equity_usd})


async def publish_since_inception(
    redis: Redis, keys: Keyspace, series: Mapping[str, Sequence[bytes]], absent: Iterable[str] = ()
) -> None:
    """Replace each model's curve (oldest point first); models in ``absent`` have no snapshot: their
    key is removed (Redis has no empty list)."""
    async with multi(redis) as pipe:
        for model_id, points in series.items():
            replace_list(pipe, keys.since_inception(model_id), points)
        for model_id in absent:
            pipe.delete(keys.since_inception(model_id).name)
        await pipe.execute()
