"""Round-trip timing of every Postgres statement and Redis command (design 4.3 latency histograms).

The composition root builds the pool and the Redis client with these classes, so every caller is
measured without a line of its own: ``nof0_pg_seconds{op}`` (op: the statement's first SQL word,
``select``, ``insert``, ...) and ``nof0_redis_seconds{op}`` (the command's name; a pipeline or MULTI
is one ``pipeline`` / ``multi`` round trip). Blocking reads (``XREAD ... BLOCK``) are not timed: they
wait for data, not for the server.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Histogram
from psycopg import AsyncCursor
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import Pipeline

__all__ = ["timed_cursor_class", "TimedRedis", "TimedRedisCluster", "sql_op"]

# Statement kinds nof0 sends; anything else is "other" so the label stays a small set.
_SQL_OPS = frozenset({"select", "insert", "update", "delete", "with", "copy", "call", "set", "show", "lock",
                      "create", "drop", "alter", "refresh", "analyze", "truncate", "begin", "commit", "rollback"})


def sql_op(query: Any) -> str:
    if isinstance(query, bytes):
        query = query.decode(errors="replace")
    if not isinstance(query, str):  # psycopg.sql.Composed / SQL: the leading literal names the statement
        parts = getattr(query, "_obj", None)
        while isinstance(parts, list) and parts:
            parts = getattr(parts[0], "_obj", None)
        query = parts if isinstance(parts, str) else ""
    word = query.lstrip(" \n\t(").split(None, 1)
    op = word[0].lower() if word else ""
    return op if op in _SQL_OPS else "other"


def timed_cursor_class(histogram: Histogram) -> type[AsyncCursor[Any]]:
    """An ``AsyncCursor`` that observes each ``execute`` / ``executemany`` into ``histogram{op}``."""

    class TimedCursor(AsyncCursor[Any]):
        async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await super().execute(query, params, **kwargs)
            finally:
                histogram.labels(sql_op(query)).observe(time.perf_counter() - started)

        async def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
            started = time.perf_counter()
            try:
                await super().executemany(query, params_seq, **kwargs)
            finally:
                histogram.labels(sql_op(query)).observe(time.perf_counter() - started)

    return TimedCursor


def _command_op(args: tuple[Any, ...]) -> str | None:
    """The label of a command, or None for one that blocks waiting for data."""
    if any(a in ("BLOCK", b"BLOCK") for a in args[1:]):
        return None
    name = args[0]
    return (name.decode() if isinstance(name, bytes) else str(name)).lower()


class _Timed:
    """Mixin: ``execute_command`` observed into ``self.latency`` (set by the composition root)."""

    latency: Histogram | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.latency is None:
            return await super().execute_command(*args, **options)  # type: ignore[misc]
        started = time.perf_counter()
        try:
            return await super().execute_command(*args, **options)  # type: ignore[misc]
        finally:
            if (op := _command_op(args)) is not None:
                self.latency.labels(op).observe(time.perf_counter() - started)


class _TimedPipeline(Pipeline):
    latency: Histogram | None = None

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        started = time.perf_counter()
        try:
            return await super().execute(raise_on_error)
        finally:
            if self.latency is not None:
                self.latency.labels("multi" if self.is_transaction else "pipeline").observe(
                    time.perf_counter() - started)


class TimedRedis(_Timed, Redis):
    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = _TimedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.latency = self.latency
        return pipe


class TimedRedisCluster(_Timed, RedisCluster):
    """Single commands timed; a cluster pipeline (per-slot MULTIs, cache/write.py) is not."""
