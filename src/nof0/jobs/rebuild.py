"""Rebuild every design Redis key (design 3.2) from Postgres (design 3.4): at the cold start of ``nof0
run`` when the sentinel is missing and whenever the keyspace was dropped (both by the watcher,
``nof0.jobs.cache_watch``), after ``nof0 restore``, and by hand (``nof0 cache rebuild``).

Each key family is written by its own domain's publisher (the ones ingest runs after commit), fed with
every owner Postgres knows: prices and the crypto_prices map (``price_latest``), venue metadata
(``market_assets``/``market_asset_ctx``), positions hashes marked at the latest prices, recent trades
and their idempotency guards, conversations and last decisions, trader states, simulator orders and
balances, then the views refreshed and the leaderboard, since-inception curves and stored analytics.
The trades stream is refilled from its transactional outbox (``nof0.trades.outbox``: the entries after
the stream's last id, each trade once, in commit order of the outbox sequence). Locks (``nof0:lock:*``) are coordination, not values: they are not rebuilt,
nor are the scale-out leases, fences and the engines set (``keys.COORDINATION``: their holders renew
them within a lease TTL); the API's own response keys refill on their next read, and ``nof0:changes`` is
a log of commits, not a value.

A family that fails is reported and the others still run. Only a rebuild without failures writes
``nof0:cache:sentinel``, the key whose absence the watcher takes for a dropped keyspace. One rebuild
at a time across processes (``nof0:lock:cache.rebuild``); a second one reports ``skipped``.
"""

from __future__ import annotations

import time
import msgspec
from redis import RedisError

from nof0.analytics.publish import rebuild_leaderboard, rebuild_since_inception, republish_analytics
from nof0.cache.guards import hold_locks
from nof0.cache.write import set_json
from nof0.conversations.cache import publish_conversations, publish_last_decisions
from nof0.jobs import rebuild_repository as repo
from nof0.jobs.views import refresh_views
from nof0.kernel.stage import Publisher
from nof0.market.cache import publish_market
from nof0.obs.logging import get_logger
from nof0.prices.cache import publish_prices
from nof0.runtime import Runtime
from nof0.sim.cache import publish_balances, publish_orders
from nof0.traders.cache import publish_trader_states
from nof0.trades.cache import publish_positions, publish_recent_trades, restore_guards
from nof0.trades.outbox import publish_outbox

__all__ = ["REBUILD", "RebuildReport", "rebuild_caches", "drop_keyspace", "FAMILIES"]

REBUILD = "cache_rebuild"

log = get_logger("nof0.jobs.rebuild")


class RebuildReport(msgspec.Struct, kw_only=True):
    reason: str
    status: str = "ok"  # ok, partial (some family failed), skipped (another process is rebuilding)
    owners: dict[str, int] = msgspec.field(default_factory=dict)  # family -> how many owners it covered
    failed: dict[str, str] = msgspec.field(default_factory=dict)  # family -> error
    seconds: float = 0.0


# family -> (its publishers, the owners they are fed with), in the order they are rebuilt (hot keys first).
# Each publisher is the one ingest runs after commit (prices: ingest's variant publishes what the batch's
# transaction read, the same keys and values); fed with every owner it rebuilds every key.
FAMILIES: dict[str, tuple[tuple[Publisher, ...], str]] = {
    "prices": ((publish_prices,), "symbols"),
    "market": ((publish_market,), "market"),
    "positions": ((publish_positions,), "models"),
    "trades_recent": ((publish_recent_trades,), "models"),
    "trades_stream": ((publish_outbox,), "models"),  # refilled from its outbox, from the stream's last id
    "conversations": ((publish_conversations, publish_last_decisions), "models"),
    "trader_state": ((publish_trader_states,), "traders"),
    "sim": ((publish_orders, publish_balances), "sim_traders"),
}


async def rebuild_caches(rt: Runtime, reason: str = "manual") -> RebuildReport:
    """Rebuild every design key from Postgres; never raises for a family that fails (see the report)."""
    started = time.perf_counter()
    report = RebuildReport(reason=reason)
    try:
        async with hold_locks(rt.redis, [rt.keys.lock("cache.rebuild")]) as held:
            if not held:
                report.status = "skipped"
                log.info("cache_rebuild_skipped", reason=reason, why="another process is rebuilding")
                return report
            await _rebuild(rt, report)
    except RedisError as exc:  # Redis unreachable: nothing can be rebuilt now; the watcher retries
        report.failed["redis"] = f"{type(exc).__name__}: {exc}"
    report.seconds = time.perf_counter() - started
    report.status = "partial" if report.failed else report.status
    outcome = "ok" if not report.failed else "failed"
    rt.metrics.cache_rebuilds.labels(reason, outcome).inc()
    rt.metrics.cache_rebuild_seconds.observe(report.seconds)
    log.info("cache_rebuilt", reason=reason, status=report.status, seconds=round(report.seconds, 3),
             owners=report.owners, failed=report.failed or None)
    return report


async def _rebuild(rt: Runtime, report: RebuildReport) -> None:
    async with rt.pool.connection() as conn:
        async with conn.transaction():
            owners = await repo.list_owners(conn)
            guarded = await repo.list_guarded_trades(conn, rt.keys.ttl_ms("idempotency"))
        for family, (publishers, owned_by) in FAMILIES.items():
            items = getattr(owners, owned_by)
            try:
                for publish in publishers:
                    await publish(rt, conn, items)
                report.owners[family] = len(items)
            except Exception as exc:  # noqa: BLE001 - one family must not keep the others stale
                report.failed[family] = f"{type(exc).__name__}: {exc}"
        try:
            await restore_guards(rt, guarded)
            report.owners["ingest_guards"] = len(guarded)
        except Exception as exc:  # noqa: BLE001
            report.failed["ingest_guards"] = f"{type(exc).__name__}: {exc}"
    try:
        await refresh_views(rt)  # the leaderboard key is the view's rows: bring them up to the tables first
    except Exception as exc:  # noqa: BLE001 - the view as it is still beats no key at all
        report.failed["views"] = f"{type(exc).__name__}: {exc}"
    for family, publish in (("leaderboard", rebuild_leaderboard), ("since_inception", rebuild_since_inception),
                            ("analytics", republish_analytics)):
        try:
            result = await publish(rt)
        except Exception as exc:  # noqa: BLE001
            report.failed[family] = f"{type(exc).__name__}: {exc}"
            continue
        report.owners[family] = result.models
        if result.redis_error:
            report.failed[family] = result.redis_error
    if not report.failed:
        pipe = rt.redis.pipeline(transaction=False)
        set_json(pipe, rt.keys.cache_sentinel(), {"rebuilt_at_ms": rt.clock.now_ms(), "reason": report.reason})
        await pipe.execute()


async def drop_keyspace(rt: Runtime) -> int:
    """Delete every key under the namespace's prefix (after a restore they describe another database);
    returns how many. SCAN + UNLINK in batches: other namespaces on the same Redis are left alone."""
    dropped = 0
    batch: list[bytes] = []
    async for name in rt.redis.scan_iter(match=rt.keys.scan_pattern(), count=1000):
        batch.append(name)
        if len(batch) >= 1000:
            dropped += await rt.redis.unlink(*batch)
            batch = []
    if batch:
        dropped += await rt.redis.unlink(*batch)
    return dropped
