"""SQL of prices: ``price_ticks`` and ``price_latest`` (design 2.2, 2.4 "Prices" steps 2-3). Never commits.

Ticks arrive in batches: one binary COPY into a session-local staging table, then one statement
inserts the new ticks (natural key ``(symbol, ts_ms, source)``, ON CONFLICT DO NOTHING) and moves
``price_latest`` forward from exactly the ticks it stored.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from psycopg import AsyncConnection

__all__ = ["insert_ticks", "list_latest", "list_ticks_between"]

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS ingest_ticks (symbol text, price float8, ts_ms int8, source text)
ON COMMIT DELETE ROWS
"""

# The latest price of a symbol is its stored tick with the greatest (ts_ms, price): a deterministic
# choice when two sources publish the same millisecond, so any arrival order ends in the same row.
_STORE = """
WITH staged AS (
    SELECT DISTINCT ON (symbol, ts_ms, source) symbol, price, ts_ms, source
      FROM ingest_ticks
     ORDER BY symbol, ts_ms, source, price DESC
), stored AS (
    INSERT INTO price_ticks (symbol, price, ts_ms, source)
    SELECT symbol, price, ts_ms, source FROM staged
    ON CONFLICT DO NOTHING
    RETURNING symbol, price, ts_ms
), latest AS (
    INSERT INTO price_latest AS l (symbol, price, ts_ms)
    SELECT DISTINCT ON (symbol) symbol, price, ts_ms FROM stored ORDER BY symbol, ts_ms DESC, price DESC
    ON CONFLICT (symbol) DO UPDATE SET price = EXCLUDED.price, ts_ms = EXCLUDED.ts_ms, updated_at = now()
     WHERE (EXCLUDED.ts_ms, EXCLUDED.price) > (l.ts_ms, l.price)
    RETURNING symbol
)
SELECT (SELECT count(*) FROM stored) AS stored, (SELECT count(*) FROM latest) AS moved
"""


async def insert_ticks(conn: AsyncConnection, rows: Iterable[tuple[str, float, int, str]]) -> tuple[int, int]:
    """Store (symbol, price, ts_ms, source) ticks; returns (ticks stored, latest prices moved)."""
    await conn.execute(_STAGE)
    async with conn.cursor() as cur:
        async with cur.copy("COPY ingest_ticks (symbol, price, ts_ms, source) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "float8", "int8", "text"])
            for row in rows:
                await copy.write_row(row)
        await cur.execute(_STORE)
        counts = await cur.fetchone()
        await cur.execute("DELETE FROM ingest_ticks")  # a second batch in this transaction starts empty
    return counts["stored"], counts["moved"]


async def list_latest(conn: AsyncConnection, symbols: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """``price_latest`` rows (all, or the given symbols), by symbol."""
    if symbols is None:
        cur = await conn.execute("SELECT symbol, price, ts_ms FROM price_latest ORDER BY symbol")
    else:
        cur = await conn.execute(
            "SELECT symbol, price, ts_ms FROM price_latest WHERE symbol = ANY(%b::text[]) ORDER BY symbol",
            (list(symbols),),
        )
    return await cur.fetchall()


async def list_ticks_between(conn: AsyncConnection, *, source: str, symbols: Sequence[str], start_ms: int,
                             end_ms: int, after: tuple[int, str] | None = None, limit: int = 10_000
                             ) -> list[tuple[int, str, float]]:
    """Stored ``(ts_ms, symbol, price)`` ticks of one source and some symbols with ``start_ms <= ts_ms <
    end_ms``, in ``(ts_ms, symbol)`` order, at most ``limit``; ``after`` continues past a previous page's
    last ``(ts_ms, symbol)`` (keyset pagination, so a long range is read in pages, never all at once)."""
    after_ts, after_symbol = after if after is not None else (start_ms - 1, "")
    cur = await conn.execute(
        """
        SELECT ts_ms, symbol, price FROM price_ticks
         WHERE source = %s AND symbol = ANY(%b::text[]) AND ts_ms >= %s AND ts_ms < %s
           AND (ts_ms, symbol) > (%s, %s)
         ORDER BY ts_ms, symbol
         LIMIT %s
        """,
        (source, list(symbols), start_ms, end_ms, after_ts, after_symbol, limit),
    )
    return [(r["ts_ms"], r["symbol"], r["price"]) for r in await cur.fetchall()]
