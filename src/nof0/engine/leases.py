"""Leases that let several engine processes share the traders and the feeds (docs/scaling.md).

Each trader (each market feed) runs in exactly one process at a time: the one holding its Redis lease
(``SET NX PX``, renewed every third of the ``lease`` TTL class). Taking a lease increments its fencing
counter in the same script (the lease and its counter share a hash tag, so this works on a cluster
too); the token goes with every write for that trader and Postgres refuses a token lower than the
highest it has seen (traders/fencing.py), so a process that lost its lease (paused past the TTL, cut
off from Redis) can no longer write.

Renewing (:meth:`LeaseTable.renew`) runs on its own, every third of the TTL, so a long cycle (a slow
model) never lets a lease lapse; taking and handing over (:meth:`LeaseTable.tick`) happen between
cycles, where the caller can drop a name before its lease is released (its account, its feed).

Which process should hold what: live processes heartbeat into one sorted set (score = expiry); the
names, ordered by a stable hash, are dealt round-robin to the live processes in id order, so each gets
its fair share (floor or ceil of names / processes). A process releases, between cycles, a name that
is no longer its own, and takes the names that are its own as soon as their lease is free. A process
that dies stops renewing: its leases and its heartbeat expire within the TTL and the others take its
names over; a joining process gets its share from the others' releases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from nof0.cache.keys import Key, Keyspace
from nof0.obs.logging import get_logger

__all__ = ["LeaseTable", "LeaseLost", "Changes", "share_of"]

log = get_logger("nof0.engine.leases")

# KEYS: lease, fence; ARGV: owner, TTL ms -> the new fencing token, or nil when someone else holds it
_TAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS: lease, fence; ARGV: owner, at least -> a new token above ``at least``, or nil when not the holder
_REFENCE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  local n = tonumber(redis.call('GET', KEYS[2]) or '0')
  if n < tonumber(ARGV[2]) then redis.call('SET', KEYS[2], ARGV[2]) end
  return redis.call('INCR', KEYS[2])
end
return false
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


async def list_live_engines(redis: Redis, keys: Keyspace, now_ms: int) -> list[str]:
    """The engine processes whose heartbeat (``nof0:engines``) has not expired at ``now_ms``."""
    members = await redis.zrangebyscore(keys.engines().name, f"({now_ms}", "+inf")
    return [m.decode() if isinstance(m, bytes) else m for m in members]


class LeaseLost(RuntimeError):
    """The store refused a write for a trader: a newer lease holder writes for it now."""


def _order(name: str) -> bytes:
    return hashlib.sha1(name.encode()).digest()


def share_of(owner: str, members: Iterable[str], names: Iterable[str]) -> set[str]:
    """The names ``owner`` should hold among ``members``: dealt round-robin in stable hash order."""
    live = sorted(set(members))
    if owner not in live:
        return set()
    me, n = live.index(owner), len(live)
    return {name for i, name in enumerate(sorted(set(names), key=_order)) if i % n == me}


@dataclass
class Changes:
    gained: dict[str, int] = field(default_factory=dict)  # name -> fencing token
    lost: list[str] = field(default_factory=list)  # renewals that failed: someone else may hold them now
    released: list[str] = field(default_factory=list)  # handed over to their new owner


class LeaseTable:
    """The leases one process takes on a set of names (trader ids, or market providers)."""

    def __init__(self, redis: Redis, keys: Keyspace, owner: str, names: Iterable[str], *, kind: str = "trader",
                 now_ms: Callable[[], int]) -> None:
        self.redis, self.keys, self.owner, self.names = redis, keys, owner, sorted(set(names))
        self._lease: Callable[[str], Key] = keys.trader_lease if kind == "trader" else keys.feed_lease
        self._fence: Callable[[str], Key] = keys.trader_fence if kind == "trader" else keys.feed_fence
        self._now = now_ms
        self.held: dict[str, int] = {}
        self.members: list[str] = []  # the live processes at the last heartbeat
        self.ttl_ms = keys.ttl_ms("lease")

    async def renew(self) -> list[str]:
        """Heartbeat and renew what is held; returns the names whose renewal failed (someone else may hold
        them now), no longer held. Call at least every third of the TTL, cycles or not."""
        self.members = await self._heartbeat()
        lost = []
        for name in list(self.held):
            if not await self.redis.eval(_RENEW, 1, self._lease(name).name, self.owner, self.ttl_ms):
                if self.held.pop(name, None) is not None:
                    lost.append(name)
        if lost:
            log.warning("leases lost", owner=self.owner, lost=lost)
        return lost

    async def tick(self, drop: Callable[[list[str]], Awaitable[None]] | None = None) -> Changes:
        """Renew what is held, release what is no longer ours, take what is ours and free. Call between
        cycles. ``drop`` is awaited with the names about to be released (and those lost) first, so their
        user stops before their next holder starts."""
        out = Changes(lost=await self.renew())
        mine = share_of(self.owner, self.members, self.names)
        surplus = [n for n in self.held if n not in mine]
        if drop is not None and (surplus or out.lost):
            await drop(out.lost + surplus)
        for name in surplus:
            await self._release(name)
            out.released.append(name)
        for name in sorted(mine - set(self.held)):
            token = await self.redis.eval(_TAKE, 2, self._lease(name).name, self._fence(name).name,
                                          self.owner, self.ttl_ms)
            if token is not None:
                self.held[name] = out.gained[name] = int(token)
        if out.gained or out.lost or out.released:
            log.info("leases changed", owner=self.owner, gained=sorted(out.gained), lost=out.lost,
                     released=out.released, holding=len(self.held), processes=len(self.members))
        return out

    async def refence(self, name: str, at_least: int) -> int | None:
        """A new token above ``at_least`` for a held name (the store saw a higher token than Redis hands
        out: Redis lost its counters); None when the lease is no longer ours."""
        token = await self.redis.eval(_REFENCE, 2, self._lease(name).name, self._fence(name).name, self.owner,
                                      at_least)
        if token is None:
            self.held.pop(name, None)
            return None
        self.held[name] = int(token)
        return int(token)

    async def release(self, names: Iterable[str]) -> None:
        for name in list(names):
            if name in self.held:
                await self._release(name)

    async def release_all(self) -> None:
        """On a clean stop: hand everything over now rather than after the TTL."""
        for name in list(self.held):
            await self._release(name)
        await self.redis.zrem(self.keys.engines().name, self.owner)

    async def _release(self, name: str) -> None:
        await self.redis.eval(_RELEASE, 1, self._lease(name).name, self.owner)
        self.held.pop(name, None)

    async def _heartbeat(self) -> list[str]:
        key, now = self.keys.engines().name, self._now()
        await self.redis.zadd(key, {self.owner: now + self.ttl_ms})
        await self.redis.zremrangebyscore(key, "-inf", now)
        return [m.decode() if isinstance(m, bytes) else m for m in await self.redis.zrange(key, 0, -1)]
