"""The 3.3 guardrails on a real Redis: SET NX PX lock and the idempotency guard."""

from __future__ import annotations

from nof0.cache.guards import acquire_lock, claim_once, forget_claim, redis_lock, release_lock


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
