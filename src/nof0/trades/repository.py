"""SQL of the trading facts: ``fills``, ``fill_books``, ``trades``, ``positions``,
``position_closes`` and ``account_equity_snapshots`` (design 2.2, 2.4 "Trades" and "Positions").
Never commits: the trade pipeline writes all of one batch in one transaction.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Sequence

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from nof0.db.arrays import jsonb, unnest_params, upsert_sql
from nof0.db.staging import copy_new, row_values, stage_rows

__all__ = [
    "lock_models", "insert_fills", "list_fills", "get_fill_books", "upsert_fill_books",
    "upsert_trades", "insert_new_trades", "delete_trades_except", "upsert_positions", "delete_positions_except",
    "upsert_fill_snapshots", "upsert_event_snapshots", "insert_position_closes", "close_positions",
    "list_open_positions", "list_open_marks", "list_recent_trades", "list_trades_closed_after", "TRADE_TYPES",
    "POSITION_TYPES", "get_position_versions",
    "get_position_closes", "list_open_position_ids", "discard_closes_before_entry", "delete_position_trades",
    "list_models_with_fills",
]

TRADE_TYPES: dict[str, str] = {
    "id": "text", "trade_id": "text", "model_id": "text", "symbol": "text", "side": "text", "trade_type": "text",
    "quantity": "float8", "leverage": "float8", "confidence": "float8", "entry_price": "float8",
    "entry_ts_ms": "bigint", "exit_price": "float8", "exit_ts_ms": "bigint", "realized_gross_pnl": "float8",
    "realized_net_pnl": "float8", "total_commission_dollars": "float8", "entry_oid": "bigint", "exit_oid": "bigint",
    "entry_sz": "float8", "exit_sz": "float8", "entry_tid": "bigint", "exit_tid": "bigint", "entry_crossed": "bool",
    "exit_crossed": "bool", "entry_liquidation": "jsonb", "exit_liquidation": "jsonb",
    "entry_commission_dollars": "float8", "exit_commission_dollars": "float8", "entry_closed_pnl": "float8",
    "exit_closed_pnl": "float8", "exit_plan": "jsonb", "origin": "text",
}
POSITION_TYPES: dict[str, str] = {
    "id": "text", "model_id": "text", "symbol": "text", "side": "text", "entry_price": "float8",
    "quantity": "float8", "leverage": "float8", "confidence": "float8", "entry_ts_ms": "bigint",
    "commission": "float8", "status": "text", "exit_ts_ms": "bigint", "exit_price": "float8", "metadata": "jsonb",
    "entry_oid": "bigint", "exit_plan": "jsonb", "origin": "text", "updated_ts_ms": "bigint", "version_md5": "text",
}
FILL_TYPES: dict[str, str] = {
    "model_id": "text", "tid": "bigint", "oid": "bigint", "symbol": "text", "side": "text", "price": "float8",
    "size": "float8", "fee_usd": "float8", "ts_ms": "bigint", "crossed": "bool", "leverage": "float8",
    "confidence": "float8", "exit_plan": "jsonb", "liquidation": "jsonb",
}

# A batch's rows travel by binary COPY into these session-local tables (nof0.db.staging).
_STAGED_TRADES, _STAGED_POSITIONS, _STAGED_FILLS = "staged_trades", "staged_positions", "staged_fills"
_STAGED_SNAPSHOTS = "staged_fill_snapshots"
_SNAPSHOT_TYPES = {"model_id": "text", "ts_ms": "bigint", "equity_usd": "float8", "realized_pnl": "float8",
                   "unrealized_pnl": "float8"}
_trade_values, _position_values = row_values(TRADE_TYPES), row_values(POSITION_TYPES)
_fill_attrs = attrgetter(*FILL_TYPES)


def _fill_values(fill: Any) -> Sequence[Any]:
    """A fill event's COPY values, read off the event itself (no row dict per fill)."""
    values = _fill_attrs(fill)
    if values[-2] is None and values[-1] is None:  # exit_plan, liquidation: most fills have neither
        return values
    return (*values[:-2], jsonb(values[-2]), jsonb(values[-1]))

# A trade keeps its origin: fills never rewrite an event's trade and the other way round.
_UPSERT_TRADES = upsert_sql("trades", TRADE_TYPES, "id", guard="t.origin = EXCLUDED.origin",
                            returning="t.id, (t.xmax = 0) AS inserted", source=_STAGED_TRADES)
# Event positions: a state replaces the stored one only when its version is greater (rows from before
# versions count as older). It is written open; the pipeline then applies the position's recorded close
# again, so a closed position takes a newer state and stays closed.
_UPSERT_EVENT_POSITIONS = upsert_sql(
    "positions", POSITION_TYPES, "id", stamp="updated_at",
    guard="t.origin = 'event' AND (t.updated_ts_ms IS NULL"
          " OR (EXCLUDED.updated_ts_ms, EXCLUDED.version_md5) > (t.updated_ts_ms, t.version_md5))",
    returning="t.id, t.model_id")
_UPSERT_FILL_POSITIONS = upsert_sql("positions", POSITION_TYPES, "id", stamp="updated_at",
                                    guard="t.origin = 'fills'", returning="t.id, t.model_id", source=_STAGED_POSITIONS)


async def lock_models(conn: AsyncConnection, model_ids: Sequence[str]) -> None:
    """Serialise fill books per model across processes (transaction-scoped, taken in a fixed order)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('nof0.fills:' || m, 0))"
        " FROM (SELECT unnest(%b::text[]) AS m ORDER BY 1) AS s",
        (sorted(set(model_ids)),),
    )


async def insert_fills(conn: AsyncConnection, fills: Sequence[Any]) -> list[tuple[str, int]]:
    """Store fill events (the ``FILL_TYPES`` attributes; natural key model_id, tid; distinct keys); returns
    the (model_id, tid) of those that were new.

    A live feed's batch, every tid above its model's greatest stored one (one index probe per model), holds
    no stored fill: it is one binary COPY into ``fills`` itself, in a savepoint, so a writer that stored one
    of these keys since the probe makes the COPY fail and the batch takes the staged way (``ON CONFLICT DO
    NOTHING``), as a replay, an overlap or a late fill does."""
    if fills and await _above_stored(conn, fills) and await copy_new(conn, "fills", FILL_TYPES, map(_fill_values, fills)):
        return [(f.model_id, f.tid) for f in fills]
    await stage_rows(conn, _STAGED_FILLS, FILL_TYPES, map(_fill_values, fills))
    cur = conn.cursor(row_factory=tuple_row)  # one per new fill: tuples, not dicts
    await cur.execute(f"INSERT INTO fills ({', '.join(FILL_TYPES)}) SELECT * FROM {_STAGED_FILLS}"
                      " ON CONFLICT DO NOTHING RETURNING model_id, tid")
    return await cur.fetchall()


async def _above_stored(conn: AsyncConnection, fills: Sequence[Any]) -> bool:
    """True when each fill's tid is above every stored tid of its model."""
    lowest: dict[str, int] = {}
    for f in fills:
        m, tid = f.model_id, f.tid
        if tid < lowest.get(m, tid + 1):
            lowest[m] = tid
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute("SELECT m, (SELECT max(tid) FROM fills WHERE model_id = m) FROM unnest(%b::text[]) AS m",
                      (list(lowest),))
    return all(top is None or lowest[m] > top for m, top in await cur.fetchall())


async def list_fills(conn: AsyncConnection, model_id: str) -> list[dict[str, Any]]:
    """A model's whole fill ledger in book order (ts_ms, tid)."""
    cur = await conn.execute(
        f"SELECT {', '.join(FILL_TYPES)} FROM fills WHERE model_id = %s ORDER BY ts_ms, tid", (model_id,)
    )
    return await cur.fetchall()


async def get_fill_books(conn: AsyncConnection, model_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    cur = await conn.execute(
        "SELECT model_id, state FROM fill_books WHERE model_id = ANY(%b::text[])", (list(model_ids),)
    )
    return {r["model_id"]: r["state"] for r in await cur.fetchall()}


async def upsert_fill_books(conn: AsyncConnection, books: Sequence[tuple[str, int, int, dict[str, Any]]]) -> None:
    """(model_id, last_ts_ms, last_tid, state) per model."""
    await conn.execute(
        """
        INSERT INTO fill_books AS b (model_id, last_ts_ms, last_tid, state)
        SELECT * FROM unnest(%b::text[], %b::bigint[], %b::bigint[], %b::jsonb[])
        ON CONFLICT (model_id) DO UPDATE
           SET last_ts_ms = EXCLUDED.last_ts_ms, last_tid = EXCLUDED.last_tid, state = EXCLUDED.state,
               updated_at = now()
         WHERE (b.last_ts_ms, b.last_tid, b.state) IS DISTINCT FROM (EXCLUDED.last_ts_ms, EXCLUDED.last_tid, EXCLUDED.state)
        """,
        ([b[0] for b in books], [b[1] for b in books], [b[2] for b in books], [jsonb(b[3]) for b in books]),
    )


async def upsert_trades(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[tuple[str, bool]]:
    """Insert or update trades by id; returns (id, inserted) for the rows that changed."""
    if not rows:
        return []
    await stage_rows(conn, _STAGED_TRADES, TRADE_TYPES, map(_trade_values, rows))
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_UPSERT_TRADES)
    return await cur.fetchall()


async def insert_new_trades(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> bool:
    """Insert trades the caller knows to be new (a fill book's round trips closed by fills just stored) by
    binary COPY into ``trades``; False when one of them was stored already: nothing was written then, and
    :func:`upsert_trades` is the way."""
    return await copy_new(conn, "trades", TRADE_TYPES, map(_trade_values, rows)) if rows else True


async def delete_trades_except(conn: AsyncConnection, model_id: str, origin: str, keep: Sequence[str]) -> list[dict[str, Any]]:
    """Remove a model's trades of ``origin`` that a rebuild no longer produces; returns them."""
    cur = await conn.execute(
        """
        DELETE FROM trades WHERE model_id = %s AND origin = %s AND NOT (id = ANY(%b::text[]))
        RETURNING id, model_id, symbol, side, realized_net_pnl, exit_ts_ms
        """,
        (model_id, origin, list(keep)),
    )
    return await cur.fetchall()


async def upsert_positions(conn: AsyncConnection, rows: Sequence[dict[str, Any]], origin: str) -> dict[str, str]:
    """Write positions of one origin; returns {position id: model id} of the rows that changed."""
    if not rows:
        return {}
    if origin == "fills":  # a batch's many: staged
        await stage_rows(conn, _STAGED_POSITIONS, POSITION_TYPES, map(_position_values, rows))
        cur = await conn.execute(_UPSERT_FILL_POSITIONS)
    else:
        cur = await conn.execute(_UPSERT_EVENT_POSITIONS, unnest_params(rows, POSITION_TYPES))
    return {r["id"]: r["model_id"] for r in await cur.fetchall()}


async def delete_positions_except(conn: AsyncConnection, model_id: str, keep: Sequence[str]) -> int:
    cur = await conn.execute(
        "DELETE FROM positions WHERE model_id = %s AND origin = 'fills' AND NOT (id = ANY(%b::text[]))",
        (model_id, list(keep)),
    )
    return cur.rowcount


async def upsert_fill_snapshots(conn: AsyncConnection, rows: Sequence[tuple[str, int, float, float, float]], *,
                                new: bool = False) -> None:
    """The equity models' fills imply at each fill millisecond (these timestamps belong to the fills):
    (model_id, ts_ms, equity, realized, unrealized) rows. ``new``: the rows are later than the models'
    books, so none is expected in the table (only an ``equity_snapshot`` event could have taken one of
    their milliseconds): a binary COPY into the table, the upsert only when one was there."""
    if not rows or new and await copy_new(conn, "account_equity_snapshots", _SNAPSHOT_TYPES, rows):
        return
    await stage_rows(conn, _STAGED_SNAPSHOTS, _SNAPSHOT_TYPES, rows)
    await conn.execute(
        f"""
        INSERT INTO account_equity_snapshots AS s (model_id, ts_ms, equity_usd, realized_pnl, unrealized_pnl)
        SELECT * FROM {_STAGED_SNAPSHOTS}
        ON CONFLICT (model_id, ts_ms) DO UPDATE
           SET equity_usd = EXCLUDED.equity_usd, realized_pnl = EXCLUDED.realized_pnl,
               unrealized_pnl = EXCLUDED.unrealized_pnl
         WHERE (s.equity_usd, s.realized_pnl, s.unrealized_pnl)
               IS DISTINCT FROM (EXCLUDED.equity_usd, EXCLUDED.realized_pnl, EXCLUDED.unrealized_pnl)
        """
    )


async def upsert_event_snapshots(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Snapshots given as events, keyed (model_id, ts_ms); a millisecond with fills keeps the fills' value.
    Returns the model id of each row written."""
    cur = await conn.execute(
        """
        INSERT INTO account_equity_snapshots AS s (model_id, ts_ms, equity_usd, realized_pnl, unrealized_pnl)
        SELECT v.* FROM unnest(%b::text[], %b::bigint[], %b::float8[], %b::float8[], %b::float8[])
                        AS v(model_id, ts_ms, equity_usd, realized_pnl, unrealized_pnl)
         WHERE NOT EXISTS (SELECT 1 FROM fills f WHERE f.model_id = v.model_id AND f.ts_ms = v.ts_ms)
        ON CONFLICT (model_id, ts_ms) DO UPDATE
           SET equity_usd = EXCLUDED.equity_usd, realized_pnl = EXCLUDED.realized_pnl,
               unrealized_pnl = EXCLUDED.unrealized_pnl
         WHERE (s.equity_usd, s.realized_pnl, s.unrealized_pnl)
               IS DISTINCT FROM (EXCLUDED.equity_usd, EXCLUDED.realized_pnl, EXCLUDED.unrealized_pnl)
        RETURNING s.model_id
        """,
        [[r[c] for r in rows] for c in ("model_id", "ts_ms", "equity_usd", "realized_pnl", "unrealized_pnl")],
    )
    return [r["model_id"] for r in await cur.fetchall()]


async def insert_position_closes(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Record closes (first one per position wins); returns the position ids newly recorded."""
    cur = await conn.execute(
        """
        INSERT INTO position_closes (position_id, exit_price, exit_ts_ms, exit_oid, commission)
        SELECT * FROM unnest(%b::text[], %b::float8[], %b::bigint[], %b::bigint[], %b::float8[])
        ON CONFLICT (position_id) DO NOTHING
        RETURNING position_id
        """,
        [[r[c] for r in rows] for c in ("id", "exit_price", "exit_ts_ms", "exit_oid", "commission")],
    )
    return [r["position_id"] for r in await cur.fetchall()]


async def close_positions(conn: AsyncConnection, position_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Apply recorded closes to open event positions among ``position_ids`` (a close never dates before
    its position's entry); returns the closed rows with the close's ``exit_oid`` and exit fee
    (``exit_fee``)."""
    cur = await conn.execute(
        """
        UPDATE positions p
           SET status = 'closed', exit_price = c.exit_price, exit_ts_ms = c.exit_ts_ms, updated_at = now()
          FROM position_closes c
         WHERE p.id = c.position_id AND p.id = ANY(%b::text[]) AND p.status = 'open' AND p.origin = 'event'
           AND c.exit_ts_ms >= p.entry_ts_ms
        RETURNING p.*, c.exit_oid, c.commission AS exit_fee
        """,
        (list(position_ids),),
    )
    return await cur.fetchall()


async def discard_closes_before_entry(conn: AsyncConnection, position_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Remove the recorded closes of event positions among ``position_ids`` that date before the position's
    entry (such a close can never apply); returns them with the position's model and entry time."""
    cur = await conn.execute(
        """
        DELETE FROM position_closes c USING positions p
         WHERE p.id = c.position_id AND p.id = ANY(%b::text[]) AND p.origin = 'event'
           AND c.exit_ts_ms < p.entry_ts_ms
        RETURNING c.position_id, c.exit_price, c.exit_ts_ms, c.exit_oid, c.commission, p.model_id, p.symbol,
                  p.entry_ts_ms
        """,
        (list(position_ids),),
    )
    return await cur.fetchall()


async def delete_position_trades(conn: AsyncConnection, trade_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Remove round trips written by position closes that no longer apply; returns them."""
    cur = await conn.execute(
        """
        DELETE FROM trades WHERE id = ANY(%b::text[]) AND origin = 'position'
        RETURNING id, model_id, symbol, side, realized_net_pnl, exit_ts_ms
        """,
        (list(trade_ids),),
    )
    return await cur.fetchall()


async def get_position_versions(conn: AsyncConnection, position_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored positions among ``position_ids``: origin, status, place and version."""
    cur = await conn.execute(
        """
        SELECT id, model_id, symbol, origin, status, entry_ts_ms, updated_ts_ms, version_md5
          FROM positions WHERE id = ANY(%b::text[])
        """,
        (list(position_ids),),
    )
    return {r["id"]: r for r in await cur.fetchall()}


async def get_position_closes(conn: AsyncConnection, position_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    cur = await conn.execute(
        "SELECT position_id, exit_price, exit_ts_ms, exit_oid, commission FROM position_closes"
        " WHERE position_id = ANY(%b::text[])",
        (list(position_ids),),
    )
    return {r["position_id"]: r for r in await cur.fetchall()}


async def list_open_position_ids(conn: AsyncConnection, model_ids: Sequence[str]) -> list[dict[str, Any]]:
    """(model_id, symbol, id) of every open position of the models, whatever wrote it."""
    cur = await conn.execute(
        "SELECT model_id, symbol, id FROM positions WHERE model_id = ANY(%b::text[]) AND status = 'open'"
        " ORDER BY model_id, symbol, id",
        (list(model_ids),),
    )
    return await cur.fetchall()


async def list_models_with_fills(conn: AsyncConnection, model_ids: Sequence[str]) -> set[str]:
    cur = await conn.execute(
        "SELECT m FROM unnest(%b::text[]) AS m WHERE EXISTS (SELECT 1 FROM fills f WHERE f.model_id = m)",
        (list(model_ids),),
    )
    return {r["m"] for r in await cur.fetchall()}


async def list_open_marks(conn: AsyncConnection) -> list[dict[str, Any]]:
    """(model_id, symbol, mark) of every open position with a latest price (``idx_positions_open``):
    what the positions hashes would be marked at now."""
    cur = await conn.execute(
        """
        SELECT p.model_id, p.symbol, l.price AS mark
          FROM positions p JOIN price_latest l ON l.symbol = p.symbol
         WHERE p.status = 'open'
         ORDER BY p.model_id, p.symbol
        """
    )
    return await cur.fetchall()


async def list_open_positions(conn: AsyncConnection, model_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Open positions of the models with their mark (``price_latest``; None when no price is known)."""
    cur = await conn.execute(
        """
        SELECT p.*, l.price AS mark
          FROM positions p LEFT JOIN price_latest l ON l.symbol = p.symbol
         WHERE p.model_id = ANY(%b::text[]) AND p.status = 'open'
         ORDER BY p.model_id, p.symbol, p.entry_ts_ms, p.id
        """,
        (list(model_ids),),
    )
    return await cur.fetchall()


async def list_trades_closed_after(conn: AsyncConnection, after_ms: dict[str, int], limit: int) -> list[dict[str, Any]]:
    """For each model, its latest ``limit`` trades that closed after its ``after_ms`` (exit time, id, symbol
    and net pnl: what a cooldown needs), newest exit first."""
    ids = sorted(after_ms)
    cur = await conn.execute(
        """
        SELECT t.* FROM unnest(%b::text[], %b::bigint[]) AS m(id, after_ms)
        CROSS JOIN LATERAL (
            SELECT id, model_id, symbol, exit_ts_ms, realized_net_pnl FROM trades
             WHERE model_id = m.id AND exit_ts_ms > m.after_ms
             ORDER BY exit_ts_ms DESC NULLS LAST, id LIMIT %s
        ) AS t
        """,
        (ids, [after_ms[i] for i in ids], limit),
    )
    return await cur.fetchall()


async def list_recent_trades(conn: AsyncConnection, model_ids: Sequence[str], limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` trades of each model, newest exit first (ties by id)."""
    cur = await conn.execute(
        """
        SELECT t.* FROM unnest(%b::text[]) AS m(id)
        CROSS JOIN LATERAL (
            SELECT * FROM trades WHERE model_id = m.id ORDER BY exit_ts_ms DESC NULLS LAST, id LIMIT %s
        ) AS t
        """,
        (list(model_ids), limit),
    )
    return await cur.fetchall()
