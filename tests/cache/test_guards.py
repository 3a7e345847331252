"""The 3.3 guardrails on a real Redis: SET NX PX lock and the idempotency guard."""

from __future__ import annotations

from nof0.cache.guards import (
    acquire_lock,
    claim_once,
    extend_locks,
    forget_claim,
    hold_locks,
    redis_lock,
    release_lock,
)


async def test_lock_is_exclusive_and_expires(rt, redis_sync):
    key = rt.keys.positions_lock("gpt-5")
    token = await acquire_lock(rt.redis, key)
    assert token
    assert await acquire_lock(rt.redis, key) is None
    assert 0 < redis_sync.pttl(key.name) <= 5000
    assert not await release_lock(rt.redis, key, "not-the-owner")
    assert await release_lock(rt.redis, key, token)
    assert await acquire_lock(rt.redis, key)


async def test_lock_context_manager(rt, redis_sync):
    key = rt.keys.lock("analytics.gpt-5")
    async with redis_lock(rt.redis, key) as held:
        assert held
        async with redis_lock(rt.redis, key) as second:
            assert not second
    assert redis_sync.exists(key.name) == 0


async def test_idempotency_guard(rt, redis_sync):
    key = rt.keys.ingest_trade("gpt-5_abc")
    assert await claim_once(rt.redis, key)
    assert not await claim_once(rt.redis, key)
    assert redis_sync.get(key.name) == b"seen"
    assert 86_000_000 < redis_sync.pttl(key.name) <= 86_400_000
    await forget_claim(rt.redis, key)
    assert await claim_once(rt.redis, key)


async def test_hold_locks_takes_the_free_ones_and_releases_them(rt, redis_sync):
    keys = [rt.keys.lock(f"analytics.m{i}") for i in range(3)]
    other = await acquire_lock(rt.redis, keys[1])
    async with hold_locks(rt.redis, keys) as held:
        assert held == {keys[0].name, keys[2].name}
        assert 0 < redis_sync.pttl(keys[0].name) <= 5000
    assert redis_sync.exists(keys[0].name, keys[2].name) == 0  # ours released
    assert redis_sync.get(keys[1].name).decode() == other  # the other holder's untouched


async def test_extend_locks_renews_only_locks_still_owned(rt, redis_sync):
    mine, stolen = rt.keys.lock("analytics.a"), rt.keys.lock("analytics.b")
    tokens = [await acquire_lock(rt.redis, k) for k in (mine, stolen)]
    redis_sync.pexpire(mine.name, 100)
    redis_sync.set(stolen.name, "someone-else", px=100)  # ours expired and another worker took it
    lost = await extend_locks(rt.redis, list(zip((mine, stolen), tokens)))
    assert lost == [stolen.name]
    assert redis_sync.pttl(mine.name) > 1000  # back to the lock class TTL
    assert redis_sync.pttl(stolen.name) <= 100 and redis_sync.get(stolen.name) == b"someone-else"
