"""The keyspace on a real Redis Cluster of three masters: ingest publishes through per-slot MULTIs and
hash-tagged scripts, the API reads what a single server would serve, and a rebuild (SCAN on every node,
UNLINK by slot) brings it all back."""

from __future__ import annotations

import dataclasses

import redis
from redis.asyncio import RedisCluster

from nof0.jobs.rebuild import drop_keyspace, rebuild_caches
from nof0.jobs.tasks import analytics_job
from nof0.runtime import open_redis
from tests.api.conftest import client_for
from tests.ops.arena import MODELS, ingest_arena

ENDPOINTS = ["/api/crypto-prices", "/api/positions", "/api/trades", "/api/leaderboard", "/api/account-totals",
             "/api/since-inception-values", "/api/analytics", "/api/conversations"]


def _wire(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in ("serverTime",)}


async def _read_all(rt) -> dict[str, dict]:
    out = {}
    async with client_for(rt) as c:
        for path in ENDPOINTS:
            r = await c.get(path)
            assert r.status_code == 200, (path, r.text)
            out[path] = _wire(r.json())
    return out


def _outcomes(rt) -> dict[str, float]:
    """Redis reads of the API by outcome (hit, miss, error), from its metrics."""
    out: dict[str, float] = {}
    for metric in rt.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "nof0_cache_requests_total":
                out[sample.labels["outcome"]] = out.get(sample.labels["outcome"], 0) + sample.value
    return out


def _keys_per_master(nodes: list[str], prefix: str) -> list[int]:
    counts = []
    for node in nodes:
        host, _, port = node.rpartition(":")
        client = redis.Redis(host=host, port=int(port))
        try:
            counts.append(sum(1 for _ in client.scan_iter(match=f"{prefix}:*", count=1000)))
        finally:
            client.close()
    return counts


async def test_ingest_and_api_reads_on_a_cluster_match_the_postgres_answers(cluster_rt, cluster_nodes, rt):
    assert isinstance(cluster_rt.redis, RedisCluster) and cluster_rt.keys.cluster
    await ingest_arena(cluster_rt)
    await analytics_job(cluster_rt)
    # the positions hash and its lock share a slot; the keyspace is spread over the masters
    k = cluster_rt.keys
    slot = cluster_rt.redis.keyslot
    assert slot(k.positions("m1").name) == slot(k.positions_lock("m1").name)
    assert slot(k.trades_stream().name) == slot(k.ingest_trade("x").name)
    assert sum(1 for n in _keys_per_master(cluster_nodes, k.prefix) if n) >= 2
    assert await cluster_rt.redis.hlen(k.positions("m1").name) == 1
    assert await cluster_rt.redis.xlen(k.trades_stream().name) == 3 * len(MODELS)

    first = await _read_all(cluster_rt)  # builds every payload and stores it on the cluster
    from_cluster = await _read_all(cluster_rt)  # a fresh app: served from the cluster
    assert first == from_cluster
    assert _outcomes(cluster_rt).get("error", 0) == 0 and _outcomes(cluster_rt).get("hit", 0) >= len(ENDPOINTS)
    # the same database read through an empty single-server namespace: the API's Postgres answers
    empty = open_redis(rt.config.root.redis.url, rt.config)
    try:
        from_postgres = await _read_all(dataclasses.replace(cluster_rt, redis=empty, keys=rt.keys))
    finally:
        await empty.aclose()
    assert from_cluster == from_postgres


async def test_a_rebuild_on_a_cluster_drops_every_node_and_restores_the_keys(cluster_rt, cluster_nodes):
    await ingest_arena(cluster_rt)
    await analytics_job(cluster_rt)
    before = await _read_all(cluster_rt)
    assert await drop_keyspace(cluster_rt) > 0
    assert _keys_per_master(cluster_nodes, cluster_rt.keys.prefix) == [0, 0, 0]
    await rebuild_caches(cluster_rt, reason="test")
    assert await cluster_rt.redis.hlen(cluster_rt.keys.positions("m2").name) == 1
    assert await _read_all(cluster_rt) == before
    assert _outcomes(cluster_rt).get("error", 0) == 0
