"""Trades and positions in Redis (design 3.2, 3.3, 4.1), values as in docs/redis-values.md:

* ``nof0:positions:{model_id}``: hash symbol -> mark-to-market position JSON, rebuilt from the open
  positions under ``nof0:lock:positions:{model_id}`` (a close removes the field);
* ``nof0:trades:recent:{model_id}``: the latest trades, newest exit first;
* ``nof0:ingest:trade:{trade_id}``: the idempotency guard of a trade announced as ``add`` (restored
  here by a rebuild).

The trades stream ``nof0:trades:stream`` is published from its transactional outbox (``trades.outbox``),
which also sets and clears the guards as it first publishes an ``add`` or a ``delete``.

Every value is read from Postgres after commit, so it is what the API's Postgres fallback would
build (same payload builders) and does not depend on the order events arrived in.
"""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg import AsyncConnection

from nof0.cache.guards import hold_locks, redis_lock
from nof0.cache.write import encode, multi, publish_lists, replace_hash
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime
from nof0.trades import repository as repo
from nof0.trades.payloads import position_json, trade_json

__all__ = ["publish_positions", "remark_positions", "publish_recent_trades", "restore_guards",
           "RECENT_TRADES", "TradeChange"]

log = get_logger("nof0.trades.cache")

RECENT_TRADES = 100  # entries kept in nof0:trades:recent:{model_id}
_LOCK_ATTEMPTS = 40  # x 25 ms: wait up to about 1 s for another writer's rebuild, then leave it to them
_LOCK_PAUSE_S = 0.025

# (op, trade row): op is "add" (new in Postgres), "update" (values changed) or "delete" (a rebuild
# of the fill ledger no longer produces it)
TradeChange = tuple[str, dict[str, Any]]


async def publish_positions(rt: Runtime, conn: AsyncConnection, model_ids: list[Any]) -> None:
    for model_id in sorted(set(model_ids)):
        if not await _rebuild_positions(rt, conn, model_id, _LOCK_ATTEMPTS):
            rt.metrics.redis_write_errors.labels("positions_lock_busy").inc()
            log.warning("positions lock busy; leaving the rebuild to its holder", model_id=model_id)


async def remark_positions(rt: Runtime, conn: AsyncConnection, model_ids: list[Any]) -> dict[str, tuple]:
    """After prices moved: replace the positions hashes of ``model_ids`` from their open positions marked at
    ``price_latest`` (current price, margin, unrealized PnL follow the prices, not only position events).

    Batched: the models' locks in one round trip, their rows in one query, the hashes in one MULTI. A model
    whose lock is busy is skipped; its holder reads after its own commit and the next pass catches up.
    Returns model -> the ``(symbol, mark)`` pairs its hash was written with."""
    wanted = sorted(set(model_ids))
    locks = {m: rt.keys.positions_lock(m) for m in wanted}
    async with hold_locks(rt.redis, list(locks.values())) as held:
        mine = [m for m in wanted if locks[m].name in held]
        if not mine:
            return {}
        async with conn.transaction():  # under the locks: no writer replaces these hashes meanwhile
            rows = await repo.list_open_positions(conn, mine)
        fields: dict[str, dict[str, bytes]] = {m: {} for m in mine}
        marks: dict[str, list[tuple]] = {m: [] for m in mine}
        for r in rows:
            fields[r["model_id"]][r["symbol"]] = encode(position_json(r, r["mark"]))
            marks[r["model_id"]].append((r["symbol"], r["mark"]))
        pipe = multi(rt.redis)
        for model_id in mine:
            replace_hash(pipe, rt.keys.positions(model_id), fields[model_id])
        await pipe.execute()
    return {m: tuple(v) for m, v in marks.items()}


async def _rebuild_positions(rt: Runtime, conn: AsyncConnection, model_id: str, attempts: int) -> bool:
    """Replace ``nof0:positions:{model_id}`` under its lock; False when the lock stayed busy."""
    key = rt.keys.positions(model_id)
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(_LOCK_PAUSE_S)
        async with redis_lock(rt.redis, rt.keys.positions_lock(model_id)) as held:
            if held:
                # read under the lock, after our commit: whoever rebuilds last saw every commit before it
                async with conn.transaction():
                    rows = await repo.list_open_positions(conn, [model_id])
                fields = {r["symbol"]: encode(position_json(r, r["mark"])) for r in rows}
                pipe = multi(rt.redis)
                replace_hash(pipe, key, fields)
                await pipe.execute()
                return True
    return False


async def restore_guards(rt: Runtime, guarded: list[tuple[str, int]]) -> None:
    """Rebuild: ``nof0:ingest:trade:{id}`` of each (trade id, time left in ms), as a guard set when the
    trade was stored would be now."""
    pipe = rt.redis.pipeline(transaction=False)
    for trade_id, left_ms in guarded:
        pipe.set(rt.keys.ingest_trade(trade_id).name, "seen", px=left_ms)
    await pipe.execute()


async def publish_recent_trades(rt: Runtime, conn: AsyncConnection, model_ids: list[Any]) -> None:
    wanted = sorted(set(model_ids))
    async with conn.transaction():
        rows = await repo.list_recent_trades(conn, wanted, RECENT_TRADES)
    await publish_lists(rt.redis, rt.keys.trades_recent, wanted, rows, "model_id", trade_json)
