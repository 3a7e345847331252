"""The read path (design 3.3, 3.4): Redis first, Postgres on a miss or error, one rebuild per burst."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from structlog.testing import capture_logs

from nof0.api.app import create_app
from nof0.api.invalidate import invalidate_api_payloads
from nof0.api.read_path import LOCAL_FRESH_MS, REDIS_RETRY_MS, ReadPath
from tests.api.conftest import client_for
from tests.api.seed import load, seed_models, seed_prices, seed_snapshot

ENDPOINT_PATHS = ["/api/crypto-prices", "/api/positions", "/api/account-totals", "/api/trades",
                  "/api/since-inception-values", "/api/leaderboard", "/api/analytics", "/api/conversations"]


def _fills(rt) -> float:
    return sum(s.value for m in rt.metrics.cache_fill_seconds.collect() for s in m.samples
               if s.name.endswith("_count"))


def _requests(rt, outcome: str) -> float:
    return sum(s.value for m in rt.metrics.cache_requests.collect() for s in m.samples
               if s.name.endswith("_total") and s.labels["outcome"] == outcome)


def _prefix_keys(redis_sync, rt) -> set[str]:
    return {k.decode() for k in redis_sync.scan_iter(match=f"{rt.keys.prefix}:api:*")}


async def _answers(client) -> dict[str, dict]:
    """Every endpoint's body, without serverTime (the time a payload was built)."""
    out = {}
    for path in ENDPOINT_PATHS:
        r = await client.get(path)
        assert r.status_code == 200, (path, r.text)
        out[path] = {k: v for k, v in r.json().items() if k != "serverTime"}
    return out


async def test_miss_builds_writes_back_then_hits(clock_rt, client, redis_sync):
    await seed_snapshot(clock_rt)
    first = await client.get("/api/trades")
    key = clock_rt.keys.api_payload("trades", "all", "medium")
    assert redis_sync.exists(key.name)
    assert 0 < redis_sync.pttl(key.name) <= clock_rt.keys.ttl_ms("medium")
    again = await client.get("/api/trades")  # within the near-cache second: no Redis call
    clock_rt.clock.advance(LOCAL_FRESH_MS)
    third = await client.get("/api/trades")  # later: Redis confirms the held bytes (42-byte header)
    assert again.content == third.content == first.content
    assert again.headers["etag"] == third.headers["etag"] == first.headers["etag"]
    assert _fills(clock_rt) == 1
    assert [_requests(clock_rt, o) for o in ("miss", "hit")] == [1, 1]  # the near-cache hit asks no one


async def test_another_process_value_replaces_the_held_one(clock_rt, client, redis_sync):
    await seed_prices(clock_rt, load("crypto-prices.json")["prices"])
    first = await client.get("/api/crypto-prices")
    # another process rebuilt the key with newer data: this process must serve the new bytes
    other = ReadPath(clock_rt)
    key = clock_rt.keys.api_payload("crypto-prices", "all", "short")
    redis_sync.delete(key.name)

    async def build():
        return {"prices": {}, "serverTime": 1}

    await other.get("crypto-prices", "all", "short", build)
    clock_rt.clock.advance(LOCAL_FRESH_MS)
    second = await client.get("/api/crypto-prices")
    assert second.json() == {"prices": {}, "serverTime": 1}
    assert second.headers["etag"] != first.headers["etag"]


async def test_flushed_redis_answers_from_postgres_and_refills(clock_rt, client, redis_sync):
    await seed_snapshot(clock_rt)
    before = await _answers(client)
    keys = _prefix_keys(redis_sync, clock_rt)
    assert len(keys) == len(ENDPOINT_PATHS)
    redis_sync.delete(*[k for k in redis_sync.scan_iter(match=f"{clock_rt.keys.prefix}:*")])
    clock_rt.clock.advance(LOCAL_FRESH_MS)
    after = await _answers(client)
    assert after == before
    assert _prefix_keys(redis_sync, clock_rt) == keys


async def test_redis_down_every_endpoint_answers_from_postgres_then_refills(
        clock_rt, dead_redis_rt, redis_sync):
    await seed_snapshot(clock_rt)
    async with client_for(clock_rt) as healthy:
        expected = await _answers(healthy)
    redis_sync.delete(*_prefix_keys(redis_sync, clock_rt))
    async with client_for(dead_redis_rt) as c:
        assert await _answers(c) == expected
        assert _requests(dead_redis_rt, "error") >= 1
        assert not _prefix_keys(redis_sync, clock_rt)  # nothing could be written
        # Redis comes back: after the retry window the next requests refill the cache
        dead_redis_rt.redis = clock_rt.redis
        dead_redis_rt.clock.advance(REDIS_RETRY_MS)
        assert await _answers(c) == expected
    assert len(_prefix_keys(redis_sync, clock_rt)) == len(ENDPOINT_PATHS)


async def test_a_redis_outage_is_logged_once_when_it_starts_and_once_when_it_ends(clock_rt, dead_redis_rt):
    await seed_snapshot(clock_rt)
    with capture_logs() as logs:
        async with client_for(dead_redis_rt) as c:
            for _ in range(4):  # four retry windows of one outage, every endpoint in each
                assert {r.status_code for r in [await c.get(p) for p in ENDPOINT_PATHS]} == {200}
                dead_redis_rt.clock.advance(REDIS_RETRY_MS)
            assert _requests(dead_redis_rt, "error") >= 4  # every failed call is still counted
            dead_redis_rt.redis = clock_rt.redis  # back
            assert (await c.get("/api/trades")).status_code == 200
            assert (await c.get("/api/positions")).status_code == 200
    assert [e["event"] for e in logs if e["event"].startswith("redis")] == [
        "redis unavailable", "redis available again"]


async def test_redis_down_serves_held_bytes_within_the_ttl(clock_rt, dead_redis_rt):
    await seed_prices(clock_rt, load("crypto-prices.json")["prices"])
    async with client_for(dead_redis_rt) as c:
        first = await c.get("/api/crypto-prices")
        fills = _fills(dead_redis_rt)
        dead_redis_rt.clock.advance(REDIS_RETRY_MS + 1)  # Redis tried again (and fails again)
        assert (await c.get("/api/crypto-prices")).content == first.content
        assert _fills(dead_redis_rt) == fills  # served from memory, no rebuild
        dead_redis_rt.clock.advance(dead_redis_rt.keys.ttl_ms("short"))
        assert (await c.get("/api/crypto-prices")).status_code == 200
        assert _fills(dead_redis_rt) == fills + 1  # older than the TTL class: rebuilt from Postgres


async def test_a_burst_of_misses_rebuilds_once(clock_rt, redis_sync):
    await seed_snapshot(clock_rt)
    async with client_for(clock_rt) as c:
        answers = await asyncio.gather(*[c.get("/api/trades") for _ in range(25)])
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1
    assert _fills(clock_rt) == 1


async def test_two_processes_share_one_rebuild_through_the_lock(clock_rt):
    await seed_snapshot(clock_rt)
    builds = 0
    gate = asyncio.Event()
    a, b = ReadPath(clock_rt), ReadPath(clock_rt)  # two API processes

    async def slow_build():
        nonlocal builds
        builds += 1
        await gate.wait()
        return {"trades": [], "serverTime": 7}

    first = asyncio.ensure_future(a.get("trades", "all", "medium", slow_build))
    while builds == 0:  # until process a holds the lock and builds
        await asyncio.sleep(0)
    second = asyncio.ensure_future(b.get("trades", "all", "medium", slow_build))
    for _ in range(20):  # let b run: it finds the lock taken and waits for a's value
        await asyncio.sleep(0)
    assert builds == 1 and not second.done()
    gate.set()
    pa, pb = await asyncio.gather(first, second)
    assert builds == 1 and pa.body == pb.body


async def test_lock_taken_serves_previous_bytes(clock_rt, redis_sync):
    await seed_snapshot(clock_rt)
    async with client_for(clock_rt) as c:
        first = await c.get("/api/since-inception-values")
        key = clock_rt.keys.api_payload("since-inception-values", "all", "long")
        redis_sync.delete(key.name)
        lock = clock_rt.keys.lock("api.since-inception-values.all")
        redis_sync.set(lock.name, "someone-else", px=lock.ttl_ms)  # another process is rebuilding
        clock_rt.clock.advance(LOCAL_FRESH_MS)
        served = await c.get("/api/since-inception-values")
    assert served.content == first.content
    assert _fills(clock_rt) == 1


def test_app_factory_builds_nothing_at_import():
    import importlib

    import nof0.api.app as module

    assert importlib.reload(module).create_app is not None
    assert create_app.__module__ == "nof0.api.app"


async def test_lock_taken_and_old_bytes_wait_for_the_holder(clock_rt, redis_sync):
    await seed_snapshot(clock_rt)
    a, b = ReadPath(clock_rt), ReadPath(clock_rt)

    async def build():
        return {"sinceInceptionValues": [], "serverTime": clock_rt.clock.now_ms()}

    old = await b.get("since-inception-values", "all", "long", build)
    clock_rt.clock.advance(clock_rt.keys.ttl_ms("long"))  # b's bytes are now older than the TTL class
    key = clock_rt.keys.api_payload("since-inception-values", "all", "long")
    redis_sync.delete(key.name)
    lock = clock_rt.keys.lock("api.since-inception-values.all")
    redis_sync.set(lock.name, "a", px=lock.ttl_ms)  # process a is rebuilding
    waiting = asyncio.ensure_future(b.get("since-inception-values", "all", "long", build))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done()  # b does not serve its old bytes: it waits for a's value
    redis_sync.delete(lock.name)
    fresh = await a.get("since-inception-values", "all", "long", build)
    assert (await waiting).body == fresh.body != old.body


async def test_invalidation_makes_a_write_visible_at_once(clock_rt, client, redis_sync, dead_redis_rt):
    await seed_models(clock_rt, {"m1"})
    before = (await client.get("/api/since-inception-values")).json()["sinceInceptionValues"]
    assert (await client.get("/api/analytics/m1")).status_code == 200
    async with clock_rt.pool.connection() as conn, conn.transaction():
        await conn.execute("INSERT INTO accounts (model_id, starting_capital_usd) VALUES ('m1', 500)")
    assert await invalidate_api_payloads(clock_rt, ["since-inception-values", "analytics"]) == 2
    clock_rt.clock.advance(LOCAL_FRESH_MS)
    after = (await client.get("/api/since-inception-values")).json()["sinceInceptionValues"]
    assert before == [] and [r["nav_since_inception"] for r in after] == [500]
    assert await invalidate_api_payloads(dead_redis_rt, ["trades"]) == 0  # best effort: logged, counted
    with pytest.raises(ValueError, match="unknown endpoint"):
        await invalidate_api_payloads(clock_rt, ["nope"])


async def _refreshes_done(app) -> None:
    """Wait for the read path's refresh-ahead tasks (no sleeping: the tasks themselves)."""
    await app.state.api.read_path.revalidated()


async def test_refresh_ahead_confirms_in_the_background_before_the_window_ends(clock_rt, redis_sync):
    await seed_snapshot(clock_rt)
    app = create_app(clock_rt)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nof0.test") as c:
        first = await c.get("/api/trades")
        clock_rt.clock.advance(LOCAL_FRESH_MS // 2)
        await c.get("/api/trades")
        assert not app.state.api.read_path._refreshing  # early in the window: nothing to do
        assert _requests(clock_rt, "hit") == 0
        clock_rt.clock.advance(LOCAL_FRESH_MS // 2 - 100)  # the window's last quarter
        late = await c.get("/api/trades")
        await _refreshes_done(app)
        assert late.content == first.content and _requests(clock_rt, "hit") == 1  # confirmed by Redis
        clock_rt.clock.advance(500)  # past the first window, inside the one the refresh opened
        await c.get("/api/trades")
        assert _requests(clock_rt, "hit") == 1 and not app.state.api.read_path._refreshing


async def test_refresh_ahead_rebuilds_after_an_invalidation_and_never_serves_past_the_window(clock_rt, redis_sync):
    await seed_snapshot(clock_rt)
    app = create_app(clock_rt)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nof0.test") as c:
        first = await c.get("/api/leaderboard")
        changed = {"leaderboard": [{"id": "someone", "num_trades": 1}]}
        redis_sync.set(clock_rt.keys.leaderboard_cache().name, json.dumps(changed))
        await invalidate_api_payloads(clock_rt, ["leaderboard"])
        clock_rt.clock.advance(LOCAL_FRESH_MS - 100)
        held = await c.get("/api/leaderboard")  # still inside the window: the held bytes, rebuilt behind
        assert held.content == first.content
        await _refreshes_done(app)
        fills = _fills(clock_rt)
        rebuilt = await c.get("/api/leaderboard")
        assert rebuilt.json() == changed and _fills(clock_rt) == fills  # served, not built, by this request

        # no request in the last quarter: after the window the request itself asks Redis
        redis_sync.set(clock_rt.keys.leaderboard_cache().name, json.dumps(load("leaderboard.json")))
        await invalidate_api_payloads(clock_rt, ["leaderboard"])
        clock_rt.clock.advance(LOCAL_FRESH_MS)
        assert (await c.get("/api/leaderboard")).json() == load("leaderboard.json")


async def test_lock_taken_and_stale_bytes_rebuilt_waits_for_the_holder(clock_rt, redis_sync):
    """A change made b's bytes stale while process a rebuilds them: b's readers get the held bytes inside
    their window, but b's own rebuild (what the listener awaits before telling stream clients) waits for
    a's new value instead of settling for the stale one."""
    await seed_snapshot(clock_rt)
    a, b = ReadPath(clock_rt), ReadPath(clock_rt)
    version = [1]

    async def build():
        return {"sinceInceptionValues": [], "serverTime": version[0]}

    old = await b.get("since-inception-values", "all", "long", build)
    version[0] = 2
    key = clock_rt.keys.api_payload("since-inception-values", "all", "long")
    redis_sync.delete(key.name)
    b.mark_stale(["since-inception-values"])
    lock = clock_rt.keys.lock("api.since-inception-values.all")
    redis_sync.set(lock.name, "a", px=lock.ttl_ms)  # process a is rebuilding
    assert b.peek("since-inception-values", "all", "long") is old  # readers: the held bytes, at once
    rebuilt = asyncio.ensure_future(b.rebuilt(["since-inception-values"]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not rebuilt.done()
    redis_sync.delete(lock.name)
    fresh = await a.get("since-inception-values", "all", "long", build)
    await rebuilt
    assert b.peek("since-inception-values", "all", "long").body == fresh.body != old.body
