"""Design 3.3 guardrails: the short ``SET NX PX`` lock and the idempotency guard.

Both fail open on Redis errors in the way the caller needs: a lock that cannot be reached is
reported as *not acquired only when Redis answered*; on a Redis error :func:`acquire_lock` raises
``redis.RedisError`` and the caller decides (the API serves the previous bytes, a job skips a run).
"""

from __future__ import annotations

import asyncio
import secrets
from contextlib import asynccontextmanager
from typing import AsyncIterator, Sequence

from redis import RedisError
from redis.asyncio import Redis

from nof0.cache.keys import Key
from nof0.obs.logging import get_logger

__all__ = ["acquire_lock", "release_lock", "redis_lock", "claim_once", "forget_claim", "hold_locks",
           "extend_locks"]

log = get_logger("nof0.cache.guards")

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


# Push a lock's expiry out only while we still own it (same reasoning as _RELEASE).
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


@asynccontextmanager
async def hold_locks(redis: Redis, keys: Sequence[Key]) -> AsyncIterator[set[str]]:
    """Take many locks in one round trip and keep them while the block runs.

    Yields the names of the keys acquired (the others are held by someone else). A batch job can run
    longer than the short lock TTL, so a background task re-extends the held locks every third of
    their TTL; a holder that dies stops extending and its locks expire as usual. Raises
    ``redis.RedisError`` when the locks cannot be taken.
    """
    tokens = [secrets.token_hex(8) for _ in keys]
    async with redis.pipeline(transaction=False) as pipe:
        for key, token in zip(keys, tokens):
            pipe.set(key.name, token, nx=True, px=key.ttl_ms)
        results = await pipe.execute()
    held = [(key, token) for key, token, ok in zip(keys, tokens, results) if ok]
    renewer = asyncio.create_task(_keep_extending(redis, held)) if held else None
    try:
        yield {key.name for key, _ in held}
    finally:
        if renewer is not None:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
        if held:
            try:
                async with redis.pipeline(transaction=False) as pipe:
                    for key, token in held:
                        pipe.eval(_RELEASE, 1, key.name, token)
                    await pipe.execute()
            except RedisError as exc:  # they expire on their own
                log.warning("lock_release_failed", locks=len(held), error=str(exc))


async def extend_locks(redis: Redis, held: Sequence[tuple[Key, str]]) -> list[str]:
    """Reset the TTL of each ``(key, token)`` lock we still own; returns the names of those we lost."""
    async with redis.pipeline(transaction=False) as pipe:
        for key, token in held:
            pipe.eval(_EXTEND, 1, key.name, token, key.ttl_ms)
        extended = await pipe.execute()
    return [key.name for (key, _), ok in zip(held, extended) if not ok]


async def _keep_extending(redis: Redis, held: list[tuple[Key, str]]) -> None:
    interval = min(key.ttl_ms for key, _ in held) / 3000
    while True:
        await asyncio.sleep(interval)
        try:
            lost = await extend_locks(redis, held)
        except RedisError as exc:
            log.warning("lock_extend_failed", locks=len(held), error=str(exc))
            continue
        if lost:
            log.warning("locks_lost", keys=lost)
