"""SQL of observability (design 4.3): table growth for dashboards. Never commits."""

from __future__ import annotations

from psycopg import AsyncConnection

__all__ = ["list_table_row_estimates"]


async def list_table_row_estimates(conn: AsyncConnection) -> list[dict]:
    """Planner row estimates of nof0's tables: cheap enough for every scrape (no count(*))."""
    cur = await conn.execute(
        """
        SELECT c.relname AS table, greatest(c.reltuples, 0)::bigint AS rows
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname NOT LIKE '%yoyo%'
         ORDER BY c.relname
        """
    )
    return await cur.fetchall()
