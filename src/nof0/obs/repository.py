"""SQL of observability (design 4.3): table growth for dashboards. Never commits."""

from __future__ import annotations

from psycopg import AsyncConnection

__all__ = ["list_table_row_estimates"]


async def list_table_row_estimates(conn: AsyncConnection) -> list[dict]:
    """Planner row estimates of nof0's tables: cheap enough for every scrape (no count(*)). A partitioned
    table (migration 010) counts the rows of all its partitions, which are not listed themselves."""
    cur = await conn.execute(
        """
        SELECT coalesce(pg_partition_root(c.oid), c.oid)::regclass::text AS table,
               sum(greatest(c.reltuples, 0))::bigint AS rows
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname NOT LIKE '%yoyo%'
         GROUP BY 1
         ORDER BY 1
        """
    )
    return await cur.fetchall()
