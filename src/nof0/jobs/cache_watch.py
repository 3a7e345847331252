"""Design 3.4.1 and 3.4.2 inside ``nof0 run`` (roles ``all`` and ``engine``): a background worker that
rebuilds every design key from Postgres (``jobs.rebuild.rebuild_caches``) at start when the keyspace is
not whole, and whenever it finds it dropped. Every ``jobs.cache_watch_every`` (3 s) it checks:

* **the sentinel** ``nof0:cache:sentinel``, written last by a rebuild without failures and never expiring:
  missing means FLUSHALL/FLUSHDB, a Redis restarted without persistence, a failover to an empty replica,
  or an earlier rebuild that failed. At the first check of the process the rebuild's reason is ``start``
  (the cold start), later ``dropped``.
* **a key count per family**, for a drop that spares the sentinel (eviction under ``maxmemory`` evicts
  keys with a TTL; someone deleting a pattern): the keys each family's owners in Postgres would have (one
  PTTL each, one pipelined round trip) are counted, and a family is dropped when every key of it that was
  present at the previous check is gone although at least one still had time to live. Expiry alone never
  empties a family before its keys' deadlines, so values that simply expire (a model that stopped trading)
  start no rebuild; readers fall back to Postgres for them as usual.

The API never waits for this: it answers from Postgres on a miss (fail open). One rebuild at a time across
processes (the rebuild's own lock: a second process's check finds it ``skipped`` and looks again next
interval). A rebuild that fails a family writes no sentinel, so the next check tries again, backing off
(doubling up to ``_MAX_BACKOFF_S``) while it keeps failing. Redis or Postgres unreachable: the check
fails, is logged, and the next one runs on schedule (no back-off: the keyspace may come back empty).
"""

from __future__ import annotations

import math
from nof0.cache.keys import Key, Keyspace
from nof0.jobs import rebuild_repository as repo
from nof0.jobs.periodic import Periodic
from nof0.jobs.rebuild import RebuildReport, rebuild_caches
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["CacheWatch", "family_keys", "WATCHED_PATTERNS", "UNWATCHED_PATTERNS"]

log = get_logger("nof0.jobs.cache_watch")

_MAX_BACKOFF_S = 60.0
_MARGIN_MS = 1000  # a key this close to its deadline may have expired on its own


def family_keys(owners: repo.Owners, k: Keyspace) -> dict[str, list[Key]]:
    """The keys each watched family's owners in Postgres would have (a key may be absent: nothing to hold)."""
    return {
        "prices": [k.crypto_prices(), *(k.price_latest(s) for s in owners.symbols)],
        "market": [key for p, s in owners.market for key in (k.market_asset(p, s), k.market_ctx(p, s))],
        "positions": [k.positions(m) for m in owners.positioned],  # a flat model has none
        "trades_recent": [k.trades_recent(m) for m in owners.models],
        "trades_stream": [k.trades_stream()],
        "conversations": [key for m in owners.models for key in (k.conversations(m), k.decision_last(m))],
        "trader_state": [k.trader_state(t) for t in owners.traders],
        "sim": [key for t in owners.sim_traders for key in (k.sim_orders(t), k.sim_balances(t))],
        "leaderboard": [k.leaderboard(), k.leaderboard_cache()],
        "since_inception": [k.since_inception(m) for m in owners.models],
        "analytics": [k.analytics_all(), *(k.analytics(m) for m in owners.models)],
    }


# design 3.2 patterns the count check leaves out, and why (the rebuild still restores the guards)
UNWATCHED_PATTERNS = {
    "ingest_trade": "idempotency guards: many, deleted with their trade; restored by every rebuild",
    "positions_lock": "coordination, not a value",
}
WATCHED_PATTERNS = frozenset({
    "price_latest", "crypto_prices", "positions", "trades_recent", "trades_stream", "leaderboard",
    "leaderboard_cache", "since_inception", "analytics", "analytics_all", "conversations", "decision_last",
    "trader_state", "market_asset", "market_ctx", "sim_orders", "sim_balances",
})


class CacheWatch(Periodic):
    name = "cache_watch"

    def __init__(self, rt: Runtime, *, every_s: float | None = None) -> None:
        super().__init__(every_s if every_s is not None else rt.config.root.jobs.cache_watch_every)
        self.rt = rt
        self._started = False  # the first check's rebuild is the cold start
        self._seen: dict[str, dict[str, float]] = {}  # family -> key present at the last check -> its deadline (ms)
        self._failures = 0

    async def check(self) -> str | None:
        """The reason to rebuild now (``start``, ``dropped``), or None when the keyspace looks whole."""
        first, self._started = not self._started, True
        if not await self.rt.redis.exists(self.rt.keys.cache_sentinel().name):
            log.warning("cache_dropped", why="sentinel missing", cold_start=first)
            return "start" if first else "dropped"
        dropped = await self._dropped_families()
        if dropped:
            log.warning("cache_dropped", why="every key of a family gone before its TTL", families=dropped)
            return "dropped"
        return None

    async def _dropped_families(self) -> list[str]:
        async with self.rt.pool.connection() as conn, conn.transaction():
            owners = await repo.list_owners(conn)
        families = family_keys(owners, self.rt.keys)
        names = [key.name for keys in families.values() for key in keys]
        pipe = self.rt.redis.pipeline(transaction=False)
        for name in names:
            pipe.pttl(name)
        ttls = dict(zip(names, await pipe.execute()))
        now = self.rt.clock.now_ms()
        dropped = []
        for family, keys in families.items():
            present = {k.name: (math.inf if ttls[k.name] == -1 else now + ttls[k.name])
                       for k in keys if ttls[k.name] != -2}
            # keys seen before, not yet due to expire, and still implied by Postgres (a model that went flat
            # lost its positions hash on purpose: all models flat at once is no dropped family)
            implied = {k.name for k in keys}
            due = [name for name, deadline in self._seen.get(family, {}).items()
                   if deadline > now + _MARGIN_MS and name in implied]
            if due and not any(name in present for name in due):
                dropped.append(family)
            self._seen[family] = present
        return dropped

    async def run_once(self) -> RebuildReport | None:
        reason = await self.check()
        if reason is None:
            return None
        report = await rebuild_caches(self.rt, reason)
        self._seen.clear()  # everything was just written: the next check counts afresh
        self._failures = self._failures + 1 if report.status == "partial" or report.failed else 0
        return report

    def next_wait_s(self) -> float:
        return min(_MAX_BACKOFF_S, self.every_s * 2 ** self._failures) if self._failures else self.every_s
