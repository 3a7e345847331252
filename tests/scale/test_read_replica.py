"""The API's fallback reads on a real streaming replica (PostgreSQL 15, ``pg_basebackup -R``): served by the
replica while it keeps up, by the primary when it lags beyond ``postgres.replica_max_lag`` or dies."""

from __future__ import annotations

import asyncio
import dataclasses

import psycopg
import pytest
import pytest_asyncio

from nof0.db.migrate import migrate
from nof0.ingest.service import IngestService
from nof0.runtime import Servers, open_redis, open_runtime
from tests.api.conftest import client_for
from tests.conftest import make_config
from tests.ingest import factories as f
from tests.ops.arena import ingest_arena
from tests.scale.nodes import postgres_pair

DEADLINE_S = 120.0


@pytest.fixture(scope="module")
def pg_pair():
    with postgres_pair() as (primary, replica):
        migrate(primary.dsn)
        yield primary, replica


@pytest_asyncio.fixture
async def replica_rt(pg_pair, test_servers, redis_prefix):
    primary, replica = pg_pair
    config = make_config(primary.dsn, test_servers.redis_url, redis_prefix, NOF0_POSTGRES_READ_DSN=replica.dsn)
    config.root.postgres.replica_max_lag = 1.0
    async with open_runtime(config, Servers(primary.dsn, test_servers.redis_url)) as rt:
        dead = open_redis("redis://127.0.0.1:1/0", config)  # every API read is a fallback read
        try:
            yield rt, dataclasses.replace(rt, redis=dead)
        finally:
            await dead.aclose()


async def _until(check, what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE_S
    while not await check():
        if loop.time() > end:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(0.1)


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        return conn.execute(sql).fetchone()[0]


async def _trade_ids(api_rt) -> set[str]:
    async with client_for(api_rt) as c:
        r = await c.get("/api/trades")
        assert r.status_code == 200, r.text
        return {t["id"] for t in r.json()["trades"]}


async def _replicated(replica_dsn: str, sql: str, want: int) -> None:
    await _until(lambda: asyncio.to_thread(lambda: _count(replica_dsn, sql) >= want), "the replica to replay")


async def test_the_replica_serves_fallback_reads_then_the_primary_when_it_lags_or_dies(pg_pair, replica_rt):
    primary, replica = pg_pair
    rt, api_rt = replica_rt
    await ingest_arena(rt)
    trades = _count(primary.dsn, "SELECT count(*) FROM trades")
    await _replicated(replica.dsn, "SELECT count(*) FROM trades", trades)

    before = rt.read_pool.replica.get_stats().get("requests_num", 0)
    ids = await _trade_ids(api_rt)
    assert len(ids) == trades
    assert rt.read_pool.replica.get_stats().get("requests_num", 0) > before  # the replica answered
    assert rt.read_pool.lag_s is not None and rt.read_pool.lag_s <= 1.0
    assert "nof0_pg_replica_lag_seconds" in _exposition(rt)

    # replay paused: a new trade on the primary, the replica falls behind and the reads move to the primary
    with psycopg.connect(replica.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        report = await IngestService(rt).ingest([f.trade("m1_late", model_id="m1", symbol="BTC", dt=900_000)])
        assert report.ok, report.rejections

        async def served_by_primary() -> bool:
            return "m1_late" in await _trade_ids(api_rt)

        await _until(served_by_primary, "the lagging replica to be skipped")
        assert _fallbacks(rt).get("lagging", 0) >= 1
    finally:
        with psycopg.connect(replica.dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    # caught up again, the replica is back in use after the retry window
    await _replicated(replica.dsn, "SELECT count(*) FROM trades", trades + 1)

    async def replica_back() -> bool:
        return rt.read_pool.replica_in_use()

    await _until(replica_back, "the replica's retry window to end")
    before = rt.read_pool.replica.get_stats().get("requests_num", 0)
    assert "m1_late" in await _trade_ids(api_rt)
    assert rt.read_pool.replica.get_stats().get("requests_num", 0) > before

    # the replica dies: the API keeps answering, from the primary
    replica.stop("immediate")
    try:
        for _ in range(3):
            assert "m1_late" in await _trade_ids(api_rt)
        assert _fallbacks(rt).get("down", 0) >= 1
    finally:
        replica.start()


def _exposition(rt) -> str:
    from prometheus_client import generate_latest

    return generate_latest(rt.metrics.registry).decode()


def _fallbacks(rt) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in rt.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "nof0_pg_replica_fallbacks_total":
                out[sample.labels["why"]] = sample.value
    return out
