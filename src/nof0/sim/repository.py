"""SQL of the paper-trading provider's state: ``sim_orders`` and ``sim_balances`` (design 2.4
"Simulator"). Never commits.

Each row carries the simulator's time (``ts_ms``) and the trader's sequence (``seq``); a state only
replaces an older one, so replays in any order converge on the newest.
"""

from __future__ import annotations

from typing import Any, Sequence

from psycopg import AsyncConnection

from nof0.db.arrays import unnest_params, upsert_sql

__all__ = ["upsert_orders", "upsert_balances", "list_recent_orders", "list_balances", "list_open_orders",
           "list_cloid_orders", "get_max_oid", "lock_paper_account", "unlock_paper_account", "ORDER_TYPES",
           "BALANCE_TYPES"]

ORDER_TYPES = {
    "trader_id": "text", "oid": "bigint", "symbol": "text", "side": "text", "order_type": "text", "price": "float8",
    "size": "float8", "filled_size": "float8", "status": "text", "reduce_only": "bool", "ts_ms": "bigint",
    "tif": "text", "trigger_px": "float8", "cloid": "text", "leverage": "float8", "avg_px": "float8",
    "fee_usd": "float8", "reserved_usd": "float8", "reason": "text", "confidence": "float8", "exit_plan": "jsonb",
    "seq": "bigint",
}
BALANCE_TYPES = {
    "trader_id": "text", "asset": "text", "total": "float8", "available": "float8", "ts_ms": "bigint",
    "margin_used": "float8", "funding_ms": "bigint", "leverage": "jsonb", "seq": "bigint",
}
_ORDER_TYPES, _BALANCE_TYPES = ORDER_TYPES, BALANCE_TYPES
# (ts_ms, seq) versions a state: two states of one millisecond are ordered by the trader's sequence
_NEWER = "(EXCLUDED.ts_ms, EXCLUDED.seq) > (t.ts_ms, t.seq)"
_UPSERT_ORDERS = upsert_sql("sim_orders", _ORDER_TYPES, "trader_id, oid", guard=_NEWER,
                            stamp="updated_at", returning="t.trader_id")
_UPSERT_BALANCES = upsert_sql("sim_balances", _BALANCE_TYPES, "trader_id, asset", guard=_NEWER,
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
        f"SELECT {', '.join(_BALANCE_TYPES)} FROM sim_balances WHERE trader_id = ANY(%b::text[])"
        " ORDER BY trader_id, asset",
        (list(trader_ids),),
    )
    return await cur.fetchall()


async def list_open_orders(conn: AsyncConnection, trader_id: str) -> list[dict[str, Any]]:
    """A trader's open orders (resting limits, pending triggers), by oid."""
    cur = await conn.execute(
        f"SELECT {', '.join(_ORDER_TYPES)} FROM sim_orders WHERE trader_id = %s AND status = 'open' ORDER BY oid",
        (trader_id,),
    )
    return await cur.fetchall()


async def list_cloid_orders(conn: AsyncConnection, trader_id: str) -> list[dict[str, Any]]:
    """Every order of a trader placed with a client order id (a retried request is answered from it)."""
    cur = await conn.execute(
        f"SELECT {', '.join(_ORDER_TYPES)} FROM sim_orders WHERE trader_id = %s AND cloid IS NOT NULL ORDER BY oid",
        (trader_id,),
    )
    return await cur.fetchall()


async def get_max_oid(conn: AsyncConnection, trader_id: str) -> int:
    cur = await conn.execute("SELECT coalesce(max(oid), 0) AS m FROM sim_orders WHERE trader_id = %s", (trader_id,))
    row = await cur.fetchone()
    return int(row["m"]) if row else 0


async def lock_paper_account(conn: AsyncConnection, trader_id: str, *, wait_s: float) -> None:
    """Take the session-level advisory lock that makes ``conn``'s process the one owner of a trader's paper
    account (held until the connection closes). Waits at most ``wait_s`` (a killed owner's connection takes
    a moment to be noticed by the server), then raises ``psycopg.errors.LockNotAvailable``."""
    await conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(wait_s * 1000)}ms",))
    await conn.execute("SELECT pg_advisory_lock(hashtextextended('nof0.sim:' || %s, 0))", (trader_id,))


async def unlock_paper_account(conn: AsyncConnection, trader_id: str) -> None:
    """Hand a trader's paper account over (the lock :func:`lock_paper_account` took on ``conn``)."""
    await conn.execute("SELECT pg_advisory_unlock(hashtextextended('nof0.sim:' || %s, 0))", (trader_id,))
