"""Trades and positions in Redis (design 3.2, 3.3, 4.1), values as in docs/redis-values.md:

* ``nof0:positions:{model_id}``: hash symbol -> mark-to-market position JSON, rebuilt from the open
  positions under ``nof0:lock:positions:{model_id}`` (a close removes the field);
* ``nof0:trades:recent:{model_id}``: the latest trades, newest exit first;
* ``nof0:trades:stream``: one entry per trade change (``op`` add, update or delete);
* ``nof0:ingest:trade:{trade_id}``: the idempotency guard; a trade is announced as ``add`` once.

Every value is read from Postgres after commit, so it is what the API's Postgres fallback would
build (same payload builders) and does not depend on the order events arrived in.
"""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg import AsyncConnection

from nof0.cache.guards import redis_lock
from nof0.cache.write import encode, publish_lists, replace_hash
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime
from nof0.trades import repository as repo
from nof0.trades.payloads import position_json, trade_json

__all__ = ["publish_positions", "publish_recent_trades", "publish_trade_changes", "RECENT_TRADES", "TradeChange"]

log = get_logger("nof0.trades.cache")

RECENT_TRADES = 100  # entries kept in nof0:trades:recent:{model_id}
_LOCK_ATTEMPTS = 40  # x 25 ms: wait up to about 1 s for another writer's rebuild, then leave it to them
_LOCK_PAUSE_S = 0.025

# (op, trade row): op is "add" (new in Postgres), "update" (values changed) or "delete" (a rebuild
# of the fill ledger no longer produces it)
TradeChange = tuple[str, dict[str, Any]]


async def publish_positions(rt: Runtime, conn: AsyncConnection, model_ids: list[Any]) -> None:
    for model_id in sorted(set(model_ids)):
        key = rt.keys.positions(model_id)
        for _ in range(_LOCK_ATTEMPTS):
            async with redis_lock(rt.redis, rt.keys.positions_lock(model_id)) as held:
                if held:
                    # read under the lock, after our commit: whoever rebuilds last saw every commit before it
                    async with conn.transaction():
                        rows = await repo.list_open_positions(conn, [model_id])
                    fields = {r["symbol"]: encode(position_json(r, r["mark"])) for r in rows}
                    pipe = rt.redis.pipeline(transaction=True)
                    replace_hash(pipe, key, fields)
                    await pipe.execute()
                    break
            await asyncio.sleep(_LOCK_PAUSE_S)
        else:
            rt.metrics.redis_write_errors.labels("positions_lock_busy").inc()
            log.warning("positions lock busy; leaving the rebuild to its holder", model_id=model_id)


async def publish_recent_trades(rt: Runtime, conn: AsyncConnection, model_ids: list[Any]) -> None:
    wanted = sorted(set(model_ids))
    async with conn.transaction():
        rows = await repo.list_recent_trades(conn, wanted, RECENT_TRADES)
    await publish_lists(rt.redis, rt.keys.trades_recent, wanted, rows, "model_id", trade_json)


def _stream_fields(op: str, row: dict[str, Any]) -> dict[str, str]:
    def text(v: Any) -> str:
        return "" if v is None else repr(v) if isinstance(v, float) else str(v)

    exit_ms = row.get("exit_ts_ms")
    return {
        "op": op,
        "id": row["id"],
        "model_id": row["model_id"],
        "symbol": row["symbol"],
        "side": row["side"],
        "realized_net_pnl": text(row.get("realized_net_pnl")),
        "exit_time": text(exit_ms / 1000 if exit_ms is not None else None),
    }


async def publish_trade_changes(rt: Runtime, conn: AsyncConnection, changes: list[Any]) -> None:
    """Announce trade changes on the stream; the guard makes each trade's ``add`` happen once."""
    adds = [row for op, row in changes if op == "add"]
    claim = rt.redis.pipeline(transaction=False)
    for row in adds:
        key = rt.keys.ingest_trade(row["id"])
        claim.set(key.name, "seen", nx=True, px=key.ttl_ms)
    claimed = iter(await claim.execute() if adds else [])
    stream = rt.keys.trades_stream()
    maxlen = rt.config.root.ingest.trades_stream_maxlen
    pipe = rt.redis.pipeline(transaction=False)
    for op, row in changes:
        if op == "add" and not next(claimed):
            continue  # announced within the guard's TTL already
        if op == "delete":
            pipe.delete(rt.keys.ingest_trade(row["id"]).name)
        pipe.xadd(stream.name, _stream_fields(op, row), maxlen=maxlen, approximate=True)
    await pipe.execute()
