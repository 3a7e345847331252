"""SQL of the monthly partitions of ``price_ticks`` and ``account_equity_snapshots`` (design 2.5,
migration 010): create a month ahead, move the default partition's rows into their months, list the
months, and, for retention, stream one month out and drop it. Never commits.

Creating a month runs the migration's ``nof0_ensure_month_partition`` (idempotent: a month that
exists is left as it is). Partition names are identifiers, so the statements that name one compose
it with ``psycopg.sql.Identifier``; every value is a bound parameter.
"""

from __future__ import annotations

from typing import AsyncIterator, NamedTuple, Sequence

from psycopg import AsyncConnection, sql

__all__ = ["PartitionedTable", "MonthPartition", "PARTITIONED_TABLES", "ensure_months", "months_in_default",
           "list_months", "lock_partitions", "block_writes", "copy_month", "count_month", "drop_month", "set_lock_timeout",
           "ensure_month"]


class PartitionedTable(NamedTuple):
    name: str
    columns: Sequence[str]  # archived in this order (docs/runbook.md restores with this list)

    @property
    def default_partition(self) -> str:
        return f"{self.name}_default"


class MonthPartition(NamedTuple):
    name: str
    lo_ms: int  # first millisecond of the month (UTC)
    hi_ms: int  # first millisecond of the next month


PRICE_TICKS = PartitionedTable("price_ticks", ("id", "symbol", "price", "ts_ms", "source", "ingested_at"))
ACCOUNT_EQUITY_SNAPSHOTS = PartitionedTable(
    "account_equity_snapshots",
    ("id", "model_id", "ts_ms", "equity_usd", "realized_pnl", "unrealized_pnl", "run_id", "created_at"),
)
PARTITIONED_TABLES = {t.name: t for t in (PRICE_TICKS, ACCOUNT_EQUITY_SNAPSHOTS)}


async def ensure_months(conn: AsyncConnection, table: PartitionedTable, from_ms: int, months: int) -> list[str]:
    """The partitions of the month holding ``from_ms`` and of the ``months`` after it; returns those created."""
    cur = await conn.execute(
        """
        SELECT p AS created
          FROM generate_series(0, %(months)s) AS k,
               LATERAL nof0_ensure_month_partition(
                   %(table)s,
                   (extract(epoch FROM (date_trunc('month', to_timestamp(%(from_ms)s / 1000.0) AT TIME ZONE 'UTC')
                                        + make_interval(months => k)) AT TIME ZONE 'UTC') * 1000)::bigint) AS p
         WHERE p IS NOT NULL
         ORDER BY k
        """,
        {"table": table.name, "from_ms": from_ms, "months": months},
    )
    return [r["created"] for r in await cur.fetchall()]


async def months_in_default(conn: AsyncConnection, table: PartitionedTable) -> list[int]:
    """The first millisecond of each month that has rows waiting in the default partition."""
    cur = await conn.execute(
        sql.SQL("SELECT DISTINCT (nof0_month_bounds(ts_ms)).lo AS lo FROM {} ORDER BY lo").format(
            sql.Identifier(table.default_partition))
    )
    return [r["lo"] for r in await cur.fetchall()]


async def ensure_month(conn: AsyncConnection, table: PartitionedTable, at_ms: int) -> str | None:
    """The partition of the month holding ``at_ms`` (its waiting rows moved in); its name if created now."""
    cur = await conn.execute("SELECT nof0_ensure_month_partition(%s, %s) AS created", (table.name, at_ms))
    row = await cur.fetchone()
    return row["created"] if row else None


async def list_months(conn: AsyncConnection, table: PartitionedTable) -> list[MonthPartition]:
    """The month partitions of ``table`` (not the default one), oldest first."""
    cur = await conn.execute(
        """
        SELECT c.relname AS name, b[1]::bigint AS lo_ms, b[2]::bigint AS hi_ms
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                         'FROM \\(''?(-?[0-9]+)''?\\) TO \\(''?(-?[0-9]+)''?\\)') AS b
         WHERE i.inhparent = %s::regclass AND b IS NOT NULL
         ORDER BY lo_ms
        """,
        (table.name,),
    )
    return [MonthPartition(r["name"], r["lo_ms"], r["hi_ms"]) for r in await cur.fetchall()]


async def lock_partitions(conn: AsyncConnection, table: PartitionedTable) -> None:
    """The transaction lock that creators and droppers of ``table``'s partitions queue on (migration 010)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('nof0.partitions.' || %s))", (table.name,))


async def set_lock_timeout(conn: AsyncConnection, seconds: float) -> None:
    """Give up (and retry on the next run) rather than queue writers behind a long wait for a table lock."""
    await conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(seconds * 1000)}ms",))


async def copy_month(conn: AsyncConnection, table: PartitionedTable, month: MonthPartition) -> AsyncIterator[bytes]:
    """Every row of one month partition as CSV (header first, by id)."""
    part = sql.Identifier(month.name)
    query = sql.SQL("COPY (SELECT {} FROM {} ORDER BY id) TO STDOUT (FORMAT csv, HEADER true)").format(
        sql.SQL(", ").join(map(sql.Identifier, table.columns)), part)
    async with conn.cursor() as cur, cur.copy(query) as copy:
        async for chunk in copy:
            yield bytes(chunk)


async def block_writes(conn: AsyncConnection, month: MonthPartition) -> None:
    """Until the transaction ends, nobody writes to the month (readers go on)."""
    await conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(month.name)))


async def count_month(conn: AsyncConnection, month: MonthPartition) -> int:
    cur = await conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(month.name)))
    row = await cur.fetchone()
    return int(row["n"])


async def drop_month(conn: AsyncConnection, month: MonthPartition) -> None:
    await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(month.name)))
