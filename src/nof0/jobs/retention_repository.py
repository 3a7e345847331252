"""SQL of the retention job (design 2.5 "Archival") for tables without monthly partitions
(``decision_cycles``; the partitioned ones drop whole months, ``partitions_repository``): find a bounded
batch of rows older than a cutoff, stream exactly those rows out with COPY, delete exactly those rows.
The per-table session lock serves both kinds. Never commits.

The caller runs the three statements of a batch in one REPEATABLE READ transaction
(:func:`begin_repeatable_read` first), so they all see one snapshot: a row inserted or changed by
another transaction meanwhile is neither archived nor deleted (a concurrent change of an archived
row makes the DELETE fail with a serialization error and the whole batch rolls back).

Each table's statements are written out in full (plain SQL, bound parameters). The cutoff is always
given in epoch milliseconds; ``decision_cycles`` compares it to ``executed_at``.
"""

from __future__ import annotations

from typing import AsyncIterator, NamedTuple

from psycopg import AsyncConnection

__all__ = ["RetainedTable", "Batch", "RETAINED_TABLES", "begin_repeatable_read", "try_lock_table",
           "unlock_table", "next_batch", "copy_batch", "delete_batch"]


class RetainedTable(NamedTuple):
    name: str
    next_batch: str  # -> rows, first_id, last_id, first_ms, last_ms of the next batch
    copy_out: str  # COPY ... TO STDOUT of the batch, CSV with a header line
    delete: str  # the same rows as copy_out


class Batch(NamedTuple):
    rows: int
    first_id: int
    last_id: int
    first_ms: int
    last_ms: int


DECISION_CYCLES = RetainedTable(
    name="decision_cycles",
    next_batch="""
        SELECT count(*) AS rows, min(id) AS first_id, max(id) AS last_id,
               (extract(epoch FROM min(executed_at)) * 1000)::bigint AS first_ms,
               (extract(epoch FROM max(executed_at)) * 1000)::bigint AS last_ms
          FROM (SELECT id, executed_at FROM decision_cycles
                 WHERE executed_at < to_timestamp(%(cutoff_ms)s / 1000.0)
                 ORDER BY id LIMIT %(limit)s) b
    """,
    copy_out="""
        COPY (SELECT id, model_id, cycle_number, prompt_digest, cot_trace, decisions, success, error_message,
                     executed_at
                FROM decision_cycles
               WHERE executed_at < to_timestamp(%(cutoff_ms)s / 1000.0)
                 AND id BETWEEN %(first_id)s AND %(last_id)s
               ORDER BY id)
        TO STDOUT (FORMAT csv, HEADER true)
    """,
    delete="""
        DELETE FROM decision_cycles
         WHERE executed_at < to_timestamp(%(cutoff_ms)s / 1000.0) AND id BETWEEN %(first_id)s AND %(last_id)s
    """,
)

RETAINED_TABLES = {t.name: t for t in (DECISION_CYCLES,)}

# One retention worker per table across processes (the scheduler of `nof0 run` and `nof0 retention`).
_LOCK_NAMESPACE = "nof0.retention."


async def begin_repeatable_read(conn: AsyncConnection) -> None:
    """First statement of a batch transaction: one snapshot for the read, the COPY and the DELETE."""
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


async def try_lock_table(conn: AsyncConnection, table: str) -> bool:
    """A session advisory lock (held across the batch transactions of this connection)."""
    cur = await conn.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS locked", (_LOCK_NAMESPACE + table,))
    row = await cur.fetchone()
    return bool(row["locked"])


async def unlock_table(conn: AsyncConnection, table: str) -> None:
    await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_LOCK_NAMESPACE + table,))


async def next_batch(conn: AsyncConnection, table: RetainedTable, cutoff_ms: int, limit: int) -> Batch | None:
    """The next ``limit`` rows older than the cutoff, by id; None when there are none."""
    cur = await conn.execute(table.next_batch, {"cutoff_ms": cutoff_ms, "limit": limit})
    row = await cur.fetchone()
    if not row or not row["rows"]:
        return None
    return Batch(row["rows"], row["first_id"], row["last_id"], row["first_ms"], row["last_ms"])


async def copy_batch(conn: AsyncConnection, table: RetainedTable, cutoff_ms: int, batch: Batch) -> AsyncIterator[bytes]:
    """The batch's rows as CSV (header first), streamed as the server sends them."""
    params = {"cutoff_ms": cutoff_ms, "first_id": batch.first_id, "last_id": batch.last_id}
    async with conn.cursor() as cur, cur.copy(table.copy_out, params) as copy:
        async for chunk in copy:
            yield bytes(chunk)


async def delete_batch(conn: AsyncConnection, table: RetainedTable, cutoff_ms: int, batch: Batch) -> int:
    cur = await conn.execute(table.delete, {"cutoff_ms": cutoff_ms, "first_id": batch.first_id,
                                            "last_id": batch.last_id})
    return cur.rowcount
