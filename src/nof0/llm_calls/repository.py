"""SQL of ``llm_calls`` (migration 009). Never commits; the caller owns the transaction.

A call's key is (trader_id, cycle_number, attempt): replaying it is a no-op, a later state of the
same call (the executor learning that the reply broke the contract) replaces the stored one.
"""

from __future__ import annotations

from typing import Any, Sequence

from psycopg import AsyncConnection

from nof0.db.arrays import unnest_params, upsert_sql

__all__ = ["upsert_llm_calls", "get_usage_since", "list_llm_calls"]

_TYPES = {
    "trader_id": "text", "cycle_number": "int", "attempt": "int", "model": "text", "provider_model": "text",
    "ts_ms": "bigint", "latency_ms": "float8", "prompt_tokens": "int", "completion_tokens": "int",
    "cost_usd": "float8", "outcome": "text", "error": "text",
}
_UPSERT = upsert_sql("llm_calls", _TYPES, "trader_id, cycle_number, attempt", returning="t.trader_id")


async def upsert_llm_calls(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Insert or update calls; returns the trader id of each changed row."""
    cur = await conn.execute(_UPSERT, unnest_params(rows, _TYPES))
    return [r["trader_id"] for r in await cur.fetchall()]


async def get_usage_since(conn: AsyncConnection, trader_id: str, since_ms: int) -> dict[str, float]:
    """Tokens and USD a trader's calls used from ``since_ms`` on (its daily budget's spend)."""
    cur = await conn.execute(
        """
        SELECT coalesce(sum(prompt_tokens + completion_tokens), 0)::bigint AS tokens,
               coalesce(sum(cost_usd), 0)::float8 AS cost_usd, count(*)::bigint AS calls
          FROM llm_calls WHERE trader_id = %s AND ts_ms >= %s
        """,
        (trader_id, since_ms),
    )
    row = await cur.fetchone()
    return {"tokens": int(row["tokens"]), "cost_usd": float(row["cost_usd"]), "calls": int(row["calls"])}


async def list_llm_calls(conn: AsyncConnection, trader_id: str) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT * FROM llm_calls WHERE trader_id = %s ORDER BY cycle_number, attempt", (trader_id,)
    )
    return await cur.fetchall()
