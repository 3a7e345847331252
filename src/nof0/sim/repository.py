"""SQL of the paper-trading provider's state: ``sim_orders`` and ``sim_balances`` (design 2.4
"Simulator"). Never commits.

Each row carries the simulator's time (``ts_ms``); a state only replaces an older one, so replays in
any order converge on the newest.
"""

from __future__ import annotations

from typing import Any, Sequence

from psycopg import AsyncConnection

from nof0.db.arrays import unnest_params, upsert_sql

__all__ = ["upsert_orders", "upsert_balances", "list_recent_orders", "list_balances"]

_ORDER_TYPES = {
    "trader_id": "text", "oid": "bigint", "symbol": "text", "side": "text", "order_type": "text", "price": "float8",
    "size": "float8", "filled_size": "float8", "status": "text", "reduce_only": "bool", "ts_ms": "bigint",
}
_BALANCE_TYPES = {"trader_id": "text", "asset": "text", "total": "float8", "available": "float8", "ts_ms": "bigint"}
_UPSERT_ORDERS = upsert_sql("sim_orders", _ORDER_TYPES, "trader_id, oid", guard="EXCLUDED.ts_ms > t.ts_ms",
                            stamp="updated_at", returning="t.trader_id")
_UPSERT_BALANCES = upsert_sql("sim_balances", _BALANCE_TYPES, "trader_id, asset", guard="EXCLUDED.ts_ms > t.ts_ms",
                              stamp="updated_at", returning="t.trader_id")


async def upsert_orders(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Returns the trader id of every order row written."""
    cur = await conn.execute(_UPSERT_ORDERS, unnest_params(rows, _ORDER_TYPES))
    return [r["trader_id"] for r in await cur.fetchall()]


async def upsert_balances(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[str]:
    cur = await conn.execute(_UPSERT_BALANCES, unnest_params(rows, _BALANCE_TYPES))
    return [r["trader_id"] for r in await cur.fetchall()]


async def list_recent_orders(conn: AsyncConnection, trader_ids: Sequence[str], limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` orders per trader, oldest first."""
    cur = await conn.execute(
        f"""
        SELECT o.* FROM unnest(%b::text[]) AS tr(id)
        CROSS JOIN LATERAL (
            SELECT {', '.join(_ORDER_TYPES)} FROM sim_orders WHERE trader_id = tr.id
             ORDER BY ts_ms DESC, oid DESC LIMIT %s
        ) AS o
        ORDER BY o.trader_id, o.ts_ms, o.oid
        """,
        (list(trader_ids), limit),
    )
    return await cur.fetchall()


async def list_balances(conn: AsyncConnection, trader_ids: Sequence[str]) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT trader_id, asset, total, available, ts_ms FROM sim_balances WHERE trader_id = ANY(%b::text[])"
        " ORDER BY trader_id, asset",
        (list(trader_ids),),
    )
    return await cur.fetchall()
