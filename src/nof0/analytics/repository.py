"""Read SQL of the derived data: leaderboard, since-inception and stored analytics. Never commits.

The analytics job adds its write statements here; the API's Postgres fallback uses the reads.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

__all__ = ["list_leaderboard", "list_since_inception", "get_model_analytics", "list_model_analytics"]


async def list_leaderboard(conn: AsyncConnection) -> list[dict[str, Any]]:
    """``v_leaderboard`` rows, best return first (ties by model id, for a stable order)."""
    cur = await conn.execute(
        """
        SELECT model_id, display_name, equity, return_pct, sharpe, num_trades, num_wins, num_losses,
               win_dollars, lose_dollars, equity_ts_ms
          FROM v_leaderboard
         ORDER BY return_pct DESC, model_id
        """
    )
    return await cur.fetchall()


async def list_since_inception(conn: AsyncConnection) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """
        SELECT model_id, id, nav_since_inception, inception_at, num_invocations,
               first_ts_ms, last_ts_ms, num_snapshots
          FROM v_since_inception
         ORDER BY id
        """
    )
    return await cur.fetchall()


async def get_model_analytics(conn: AsyncConnection, model_id: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT model_id, updated_at, payload, server_time_ms FROM model_analytics WHERE model_id = %s", (model_id,)
    )
    return await cur.fetchone()


async def list_model_analytics(conn: AsyncConnection) -> list[dict[str, Any]]:
    cur = await conn.execute("SELECT model_id, updated_at, payload, server_time_ms FROM model_analytics ORDER BY model_id")
    return await cur.fetchall()
