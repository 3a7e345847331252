"""The drop watcher of ``nof0 run`` (design 3.4): the cold start rebuilds a keyspace without its sentinel,
a later flush or a family that vanished before its TTL is rebuilt, keys that merely expire are not, and a
failing rebuild is retried with a growing pause."""

from __future__ import annotations

import json
import time

from nof0.cache.keys import PATTERNS
from nof0.ingest.service import IngestService
from nof0.jobs import rebuild_repository
from nof0.jobs.cache_watch import UNWATCHED_PATTERNS, WATCHED_PATTERNS, CacheWatch, family_keys
from nof0.jobs.rebuild import FAMILIES
from nof0.jobs.tasks import analytics_job
from tests.ingest import factories as f
from tests.ops.arena import MODELS, ingest_arena


def _flush(redis_sync, prefix: str) -> None:
    for raw in redis_sync.scan_iter(match=f"{prefix}:*", count=1000):
        redis_sync.delete(raw)


async def _arena(rt, redis_sync) -> None:
    await ingest_arena(rt)
    await analytics_job(rt)
    _flush(redis_sync, rt.keys.prefix)  # as a Redis that lost everything at the start of `nof0 run`


async def test_cold_start_then_a_flush_are_rebuilt(rt, redis_sync):
    await _arena(rt, redis_sync)
    watch = CacheWatch(rt)
    report = await watch.run_once()
    assert report is not None and report.reason == "start" and report.status == "ok"
    assert json.loads(redis_sync.get(rt.keys.cache_sentinel().name))["reason"] == "start"
    assert redis_sync.exists(rt.keys.positions("m1").name) and redis_sync.exists(rt.keys.leaderboard().name)
    assert await watch.run_once() is None  # whole: nothing to do

    _flush(redis_sync, rt.keys.prefix)  # FLUSHALL while running
    report = await watch.run_once()
    assert report.reason == "dropped" and report.status == "ok"
    assert redis_sync.exists(rt.keys.conversations("m2").name)
    assert rt.metrics.registry.get_sample_value("nof0_cache_rebuilds_total", {"reason": "dropped", "outcome": "ok"}) == 1


async def test_a_family_evicted_beside_the_sentinel_is_rebuilt(rt, redis_sync):
    await _arena(rt, redis_sync)
    watch = CacheWatch(rt)
    await watch.run_once()
    assert await watch.run_once() is None  # counts every family's keys
    for m in MODELS:  # eviction (maxmemory) takes keys with a TTL: the sentinel has none and stays
        redis_sync.delete(rt.keys.conversations(m).name, rt.keys.decision_last(m).name)
    report = await watch.run_once()
    assert report is not None and report.reason == "dropped"
    assert all(redis_sync.exists(rt.keys.conversations(m).name) for m in MODELS)


async def test_keys_that_expire_start_no_rebuild(rt, redis_sync):
    await _arena(rt, redis_sync)
    watch = CacheWatch(rt)
    await watch.run_once()
    for m in MODELS:
        redis_sync.pexpire(rt.keys.trades_recent(m).name, 300)
    assert await watch.run_once() is None  # seen with 300 ms to live
    while any(redis_sync.exists(rt.keys.trades_recent(m).name) for m in MODELS):
        time.sleep(0.05)
    assert await watch.run_once() is None  # gone at their deadline: expiry, not a drop
    assert not redis_sync.exists(rt.keys.trades_recent("m1").name)  # left to the readers' Postgres fallback


async def test_every_model_going_flat_starts_no_rebuild(rt, redis_sync):
    """A model without open positions has no positions hash (the publisher deletes it): every model closing
    its last position, in one batch, is no dropped family (it was counted as one, and every such moment
    of a running arena rebuilt the whole keyspace with a warning)."""
    await _arena(rt, redis_sync)
    watch = CacheWatch(rt)
    await watch.run_once()
    assert await watch.run_once() is None
    assert all(redis_sync.exists(rt.keys.positions(m).name) for m in MODELS)
    await IngestService(rt).ingest([f.close(f"{m}-p1", exit_price=51.0, dt=5000) for m in MODELS])
    assert not any(redis_sync.exists(rt.keys.positions(m).name) for m in MODELS)
    assert await watch.run_once() is None
    # and a positions hash that does vanish while its model holds a position is still noticed
    await IngestService(rt).ingest([f.position("m1-p2", model_id="m1", symbol="BTC", entry_price=100.0)])
    assert await watch.run_once() is None
    redis_sync.delete(rt.keys.positions("m1").name)
    report = await watch.run_once()
    assert report is not None and report.reason == "dropped" and redis_sync.exists(rt.keys.positions("m1").name)


async def test_a_failing_rebuild_is_retried_with_a_growing_pause(rt, redis_sync, monkeypatch):
    await _arena(rt, redis_sync)

    async def broken(*_):
        raise RuntimeError("sim unreadable")

    monkeypatch.setitem(FAMILIES, "sim", ((broken,), "sim_traders"))
    watch = CacheWatch(rt, every_s=3)
    assert (await watch.run_once()).status == "partial"
    assert watch.next_wait_s() == 6
    assert (await watch.run_once()).reason == "dropped"  # still no sentinel
    assert watch.next_wait_s() == 12
    monkeypatch.undo()
    assert (await watch.run_once()).status == "ok"
    assert watch.next_wait_s() == 3


async def test_every_design_pattern_is_watched_or_said_why_not(rt):
    """The audit of design 3.2: every value pattern is in a watched family (and rebuilt), the rest named."""
    assert WATCHED_PATTERNS | set(UNWATCHED_PATTERNS) == {p.name for p in PATTERNS}
    assert not WATCHED_PATTERNS & set(UNWATCHED_PATTERNS)
    await ingest_arena(rt)
    async with rt.pool.connection() as conn, conn.transaction():
        owners = await rebuild_repository.list_owners(conn)
    keys = family_keys(owners, rt.keys)
    assert {k.pattern.name for family in keys.values() for k in family} == WATCHED_PATTERNS
