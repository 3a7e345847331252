"""SQL of the trades stream's outbox (``trade_outbox``, ``trade_outbox_published``; migration 011). The
ordering protocol these statements implement is described in :mod:`nof0.trades.outbox`. Never commits:
callers own their transactions."""

from __future__ import annotations

from typing import Any, Sequence

from psycopg import AsyncConnection

from nof0.db.arrays import jsonb
from nof0.db.staging import copy_rows

__all__ = ["insert_entries", "try_lock_horizon", "last_seq", "list_entries", "nth_latest_seq", "get_published",
           "mark_published", "count_pending", "prune_published", "STREAM"]

STREAM = "trades"  # the row of trade_outbox_published and the metrics' stream label

# One advisory lock key: writers hold it shared from their first outbox seq to their commit; a publisher
# takes it exclusive for an instant to read the sequence's high-water mark.
_LOCK = "hashtextextended('nof0.trade_outbox', 0)"
_ENTRY_TYPES = {"trade_id": "text", "op": "text", "fields": "jsonb"}


async def insert_entries(conn: AsyncConnection, entries: Sequence[tuple[str, str, list[str]]]) -> None:
    """Append (trade id, op, [field, value, ...]) entries, seqs in list order: the shared lock first, then
    one binary COPY (the identity default draws each row's seq as the COPY stores it, in order, so the
    lock is held before the first seq is drawn)."""
    if not entries:
        return
    await conn.execute(f"SELECT pg_advisory_xact_lock_shared({_LOCK})")
    await copy_rows(conn, "trade_outbox", _ENTRY_TYPES, ((t, op, jsonb(fields)) for t, op, fields in entries))


async def try_lock_horizon(conn: AsyncConnection) -> int | None:
    """In the caller's (short) transaction: the last seq handed out, if no writer is between drawing a seq
    and its commit (the exclusive lock was free); None when one is: that writer publishes after its commit."""
    cur = await conn.execute(f"SELECT pg_try_advisory_xact_lock({_LOCK}) AS held")
    if not (await cur.fetchone())["held"]:
        return None
    return await last_seq(conn)


async def last_seq(conn: AsyncConnection) -> int:
    """The last seq handed out (committed or not): no stream id from this outbox can be above it."""
    cur = await conn.execute("SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS seq FROM trade_outbox_seq")
    return (await cur.fetchone())["seq"]


async def list_entries(conn: AsyncConnection, after: int, upto: int, limit: int) -> list[dict[str, Any]]:
    """Committed entries with ``after`` < seq <= ``upto``, in seq order; ``fields`` as its JSON text (the
    stream script decodes it)."""
    cur = await conn.execute(
        "SELECT seq, trade_id, op, fields::text AS fields FROM trade_outbox WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s",
        (after, upto, limit),
    )
    return await cur.fetchall()


async def nth_latest_seq(conn: AsyncConnection, after: int, upto: int, n: int) -> int | None:
    """The seq of the ``n``-th latest entry in (after, upto]; None when there are fewer."""
    cur = await conn.execute(
        "SELECT seq FROM trade_outbox WHERE seq > %s AND seq <= %s ORDER BY seq DESC OFFSET %s LIMIT 1",
        (after, upto, n - 1),
    )
    row = await cur.fetchone()
    return row["seq"] if row else None


async def get_published(conn: AsyncConnection) -> int:
    cur = await conn.execute("SELECT seq FROM trade_outbox_published WHERE stream = %s", (STREAM,))
    row = await cur.fetchone()
    return row["seq"] if row else 0


async def mark_published(conn: AsyncConnection, seq: int) -> None:
    """Raise the watermark to ``seq`` (never lowers it: publishers may finish out of order)."""
    await conn.execute(
        """
        INSERT INTO trade_outbox_published AS p (stream, seq) VALUES (%s, %s)
        ON CONFLICT (stream) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now() WHERE p.seq < EXCLUDED.seq
        """,
        (STREAM, seq),
    )


async def count_pending(conn: AsyncConnection) -> int:
    """Committed entries above the watermark."""
    cur = await conn.execute(
        "SELECT count(*) AS n FROM trade_outbox"
        " WHERE seq > coalesce((SELECT seq FROM trade_outbox_published WHERE stream = %s), 0)",
        (STREAM,),
    )
    return (await cur.fetchone())["n"]


async def prune_published(conn: AsyncConnection, keep: int, limit: int) -> int:
    """Delete at most ``limit`` of the oldest entries that are published and not among the last ``keep``
    published ones; returns how many. Entries above the watermark always stay (they are still to be
    published), and so do the last ``keep`` below it: what a refill of an emptied stream reads."""
    cur = await conn.execute(
        """
        WITH edge AS (
            SELECT seq FROM trade_outbox
             WHERE seq <= coalesce((SELECT seq FROM trade_outbox_published WHERE stream = %(stream)s), 0)
             ORDER BY seq DESC OFFSET %(keep)s LIMIT 1
        ), doomed AS (
            SELECT seq FROM trade_outbox WHERE seq <= (SELECT seq FROM edge) ORDER BY seq LIMIT %(limit)s
        )
        DELETE FROM trade_outbox o USING doomed d WHERE o.seq = d.seq
        """,
        {"stream": STREAM, "keep": keep, "limit": limit},
    )
    return cur.rowcount
