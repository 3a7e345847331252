"""Design 3.3 guardrails: the short ``SET NX PX`` lock and the idempotency guard.

Both fail open on Redis errors in the way the caller needs: a lock that cannot be reached is
reported as *not acquired only when Redis answered*; on a Redis error :func:`acquire_lock` raises
``redis.RedisError`` and the caller decides (the API serves the previous bytes, a job skips a run).
"""

from __future__ import annotations

import secrets
from contextlib import asynccontextmanager
from typing import AsyncIterator

from redis.asyncio import Redis

from nof0.cache.keys import Key

__all__ = ["acquire_lock", "release_lock", "redis_lock", "claim_once", "forget_claim"]

# Delete the lock only if we still own it: a slow holder must not release a lock that expired
# and was taken by someone else.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


async def acquire_lock(redis: Redis, key: Key) -> str | None:
    """``SET key token NX PX ttl``; returns the owner token, or None when someone else holds it."""
    token = secrets.token_hex(8)
    ok = await redis.set(key.name, token, nx=True, px=key.ttl_ms)
    return token if ok else None


async def release_lock(redis: Redis, key: Key, token: str) -> bool:
    return bool(await redis.eval(_RELEASE, 1, key.name, token))


@asynccontextmanager
async def redis_lock(redis: Redis, key: Key) -> AsyncIterator[bool]:
    """``async with redis_lock(r, keys.positions_lock(m)) as held:`` -- ``held`` is False when busy."""
    token = await acquire_lock(redis, key)
    try:
        yield token is not None
    finally:
        if token is not None:
            await release_lock(redis, key, token)


async def claim_once(redis: Redis, key: Key) -> bool:
    """The idempotency guard: True the first time ``key`` is claimed within its TTL.

    ``SET key "seen" NX PX ttl`` is the atomic form of ``SETNX`` + ``PEXPIRE`` (two commands would
    leave a guard without expiry if the process died between them).
    """
    return bool(await redis.set(key.name, "seen", nx=True, px=key.ttl_ms))


async def forget_claim(redis: Redis, key: Key) -> None:
    """Undo a claim whose Postgres transaction failed, so a retry is not mistaken for a replay."""
    await redis.delete(key.name)
