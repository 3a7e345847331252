"""The simulator's state in Redis (design 3.2): ``nof0:sim:orders:{trader_id}`` (the newest orders,
oldest first) and ``nof0:sim:balances:{trader_id}`` (asset -> balance JSON)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from nof0.cache.write import encode, multi, publish_lists, replace_hash
from nof0.runtime import Runtime
from nof0.sim import repository as repo

__all__ = ["publish_orders", "publish_balances", "SIM_ORDERS_KEPT"]

SIM_ORDERS_KEPT = 1000  # entries of nof0:sim:orders:{trader_id}


async def publish_orders(rt: Runtime, conn: AsyncConnection, trader_ids: list[Any]) -> None:
    wanted = sorted(set(trader_ids))
    async with conn.transaction():
        rows = await repo.list_recent_orders(conn, wanted, SIM_ORDERS_KEPT)
    await publish_lists(rt.redis, rt.keys.sim_orders, wanted, rows, "trader_id", dict)


async def publish_balances(rt: Runtime, conn: AsyncConnection, trader_ids: list[Any]) -> None:
    wanted = sorted(set(trader_ids))
    async with conn.transaction():
        rows = await repo.list_balances(conn, wanted)
    by_trader: dict[str, dict[str, bytes]] = {t: {} for t in wanted}
    for row in rows:
        by_trader[row["trader_id"]][row["asset"]] = encode(
            {"total": row["total"], "available": row["available"], "ts_ms": row["ts_ms"]}
        )
    pipe = multi(rt.redis)
    for trader_id, fields in by_trader.items():
        replace_hash(pipe, rt.keys.sim_balances(trader_id), fields)
    await pipe.execute()
