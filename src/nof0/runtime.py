"""Composition root: the one place a process turns configuration into live dependencies.

``resolve_servers`` decides between configured and embedded servers (synchronously, before any
event loop work); ``open_runtime`` opens the Postgres pool and the Redis client and hands them down
in a :class:`Runtime`. Services receive what they need from here; nothing connects at import time.
"""

from __future__ import annotations

import warnings
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode

from nof0.cache.keys import Keyspace
from nof0.kernel.clock import Clock, SystemClock
from nof0.config import Config
from nof0.db.pool import RECONNECT_S, open_pool
from nof0.db.replica import ReadPools
from nof0.embedded import EmbeddedPostgres, EmbeddedRedis
from nof0.obs.instrument import TimedRedis, TimedRedisCluster, timed_cursor_class
from nof0.obs.metrics import Metrics

__all__ = ["Servers", "Runtime", "resolve_servers", "open_runtime", "open_redis"]


@dataclass
class Servers:
    """Where Postgres and Redis are, and the embedded servers this process started (if any)."""

    postgres_dsn: str
    redis_url: str
    embedded_postgres: EmbeddedPostgres | None = None
    embedded_redis: EmbeddedRedis | None = None

    @property
    def embedded(self) -> bool:
        return self.embedded_postgres is not None or self.embedded_redis is not None

    def describe(self) -> dict[str, str]:
        out = {
            "postgres": _redact(self.postgres_dsn),
            "redis": _redact(self.redis_url),
        }
        if self.embedded_postgres:
            out["postgres_data"] = str(self.embedded_postgres.pgdata)
        if self.embedded_redis:
            out["redis_data"] = str(self.embedded_redis.redis_dir)
        return out

    def stop(self) -> None:
        for server in (self.embedded_redis, self.embedded_postgres):
            if server is not None:
                server.stop()


def _redact(url: str) -> str:
    # never print a password: postgresql://user:secret@host -> postgresql://user:***@host
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.partition("@")
    if at and ":" in creds and creds.split(":", 1)[1]:
        return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"
    return url


def resolve_servers(config: Config) -> Servers:
    """Configured servers when given; otherwise start the embedded ones under ``data_dir``."""
    dsn, url = config.root.postgres.dsn, config.root.redis.url
    emb_pg = emb_redis = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR inside pgserver
        try:
            if not dsn:
                emb_pg = EmbeddedPostgres(config.data_dir)
                dsn = emb_pg.start()
            if not url and config.root.redis.cluster_nodes:  # a Redis Cluster (docs/scaling.md)
                url = f"redis://{config.root.redis.cluster_nodes[0]}"
            if not url:
                emb_redis = EmbeddedRedis(config.data_dir)
                url = emb_redis.start()
        except BaseException:
            for server in (emb_pg, emb_redis):
                if server is not None:
                    server.stop()
            raise
    return Servers(dsn, url, emb_pg, emb_redis)


def open_redis(url: str, config: Config, metrics: Metrics | None = None) -> Redis:
    """The client of ``url``; with ``redis.cluster_nodes`` (NOF0_REDIS_CLUSTER_NODES), redis-py's cluster client.
    With ``metrics``, every command's round trip goes to ``nof0_redis_seconds`` (obs/instrument.py)."""
    client = _open_redis(url, config)
    if metrics is not None:
        client.latency = metrics.redis_seconds  # type: ignore[attr-defined]
    return client


def _open_redis(url: str, config: Config) -> Redis:
    if nodes := config.root.redis.cluster_nodes:
        return TimedRedisCluster(  # type: ignore[return-value]  (same command API; cache/write.py handles MULTI)
            startup_nodes=[ClusterNode(n.rpartition(":")[0], int(n.rpartition(":")[2])) for n in nodes],
            socket_timeout=config.root.redis.socket_timeout,
            socket_connect_timeout=config.root.redis.socket_timeout,
        )
    return TimedRedis.from_url(
        url,
        socket_timeout=config.root.redis.socket_timeout,
        socket_connect_timeout=config.root.redis.socket_timeout,
        health_check_interval=30,
    )


@dataclass
class Runtime:
    config: Config
    servers: Servers
    pool: AsyncConnectionPool
    redis: Redis
    keys: Keyspace
    metrics: Metrics
    clock: Clock = field(default_factory=SystemClock)
    read_pool: ReadPools | None = None  # the API's fallback reads: a replica when postgres.read_dsn is set
    # told the event types of every ingest batch any IngestService of this process commits (after its own
    # on_committed): the service's scheduler listens here for design 2.3's refresh after ingest
    commit_listeners: list[Callable[[set[str]], Awaitable[None]]] = field(default_factory=list)

    @property
    def reads(self) -> ReadPools | AsyncConnectionPool:
        """Where reads that need not see this process's own writes go (db/replica.py)."""
        return self.read_pool if self.read_pool is not None else self.pool


@asynccontextmanager
async def open_runtime(config: Config, servers: Servers, *, clock: Clock | None = None) -> AsyncIterator[Runtime]:
    pg = config.root.postgres
    metrics = Metrics()
    pool = await open_pool(
        servers.postgres_dsn, min_size=pg.pool_min, max_size=pg.pool_max, timeout=pg.connect_timeout,
        cursor_factory=timed_cursor_class(metrics.pg_seconds),
    )
    replica = None
    try:
        if pg.read_dsn:  # opened without waiting: a replica down at start is skipped, not fatal
            replica = AsyncConnectionPool(pg.read_dsn, min_size=0, max_size=pg.pool_max, timeout=pg.connect_timeout,
                                          kwargs={"row_factory": dict_row}, configure=_read_only,
                                          check=AsyncConnectionPool.check_connection, reconnect_timeout=RECONNECT_S,
                                          open=False, name="nof0-replica")
            await replica.open(wait=False)
    except BaseException:
        await pool.close()
        raise
    redis = open_redis(servers.redis_url, config, metrics)
    try:
        yield Runtime(
            config=config,
            servers=servers,
            pool=pool,
            redis=redis,
            keys=Keyspace(config.ttl, prefix=config.root.redis.prefix, cluster=bool(config.root.redis.cluster_nodes)),
            metrics=metrics,
            clock=clock or SystemClock(),
            read_pool=ReadPools(pool, replica, max_lag_s=float(pg.replica_max_lag), metrics=metrics)
            if replica is not None else None,
        )
    finally:
        await redis.aclose()
        if replica is not None:
            await replica.close()
        await pool.close()


async def _read_only(conn) -> None:
    await conn.set_autocommit(False)
    await conn.set_read_only(True)
