"""SQL of the derived data: leaderboard, since-inception and stored analytics, and the fact reads and
``model_analytics`` upsert of the analytics job (design 2.4 Analytics). Never commits.

The API's Postgres fallback uses the first reads; the analytics job the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import tuple_row

from nof0.analytics.metrics import Moments, TradeCell

__all__ = [
    "list_leaderboard",
    "list_since_inception",
    "get_model_analytics",
    "list_model_analytics",
    "begin_snapshot_read",
    "list_model_ids",
    "list_trade_cells",
    "list_trade_order_stats",
    "export_snapshot",
    "use_snapshot",
    "list_decision_cycles",
    "list_position_spans",
    "list_equity_points",
    "list_last_messages",
    "upsert_model_analytics",
]


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


# ----------------------------------------------------------------------------- analytics job: reads
# The job reads every fact table once per batch of models (``model_id = ANY(%s)``), in one
# REPEATABLE READ transaction so the tables agree with each other. Large reads use binary tuple
# cursors: the job fetches every trade of every model, and dict rows cost ~3x more to build.


async def begin_snapshot_read(conn: AsyncConnection) -> None:
    """First statement of a read transaction: one consistent snapshot for all the reads after it."""
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


async def list_model_ids(conn: AsyncConnection) -> list[str]:
    cur = await conn.execute("SELECT id FROM models ORDER BY id")
    return [r["id"] for r in await cur.fetchall()]


def _tuples(conn: AsyncConnection):
    return conn.cursor(binary=True, row_factory=tuple_row)


# The statistics of metrics.trade_stats, computed by Postgres (issue 13: the job reads a few rows per
# model instead of every trade). One aggregate pass groups the trades into cells (model, won, side):
# count, mean, sample std, max/min, so Postgres' parallel hash aggregate does the per-trade work
# (avg and stddev_samp of one column share one transition state); metrics.stats_of_cells combines a
# model's cells. Medians and the last trade are one small query per model over its index range. The
# per-trade terms repeat the Python arithmetic operation for operation (holding = (exit/1000 -
# entry/1000) / 60 in float8, notional = |qty| x entry), so they are the same floats; means and sample
# stds agree with math.fsum and the corrected two-pass std to ~1e-15 relative (Postgres' float8
# aggregates use the Youngs-Cramer algorithm); percentile_cont(0.5) is statistics.median. Ids compare
# in code point order (COLLATE "C"), as str.
_HOLDING = "(exit_ts_ms::float8 / 1000 - entry_ts_ms::float8 / 1000) / 60"
_NOTIONAL = "abs(coalesce(quantity, 0)) * coalesce(entry_price, 0)"


def _distance(key: str) -> str:
    """|level - entry| / entry x 100 of a numeric, positive, finite exit plan level, else NULL.

    Nested CASEs, each test cheaper than the next: most plans have no such key, and a NULL test in an
    AND chain does not stop it (only false does), so one flat CASE evaluated every cast for them (a
    third of the cells pass). ``?`` is a key lookup without building the value."""
    return (f"CASE WHEN exit_plan ? '{key}' THEN CASE WHEN jsonb_typeof(exit_plan -> '{key}') = 'number' THEN"
            f" CASE WHEN (exit_plan ->> '{key}')::numeric > 0 AND (exit_plan ->> '{key}')::numeric <= 1e300"
            f" AND entry_price > 0 THEN abs((exit_plan ->> '{key}')::float8 - entry_price) / entry_price * 100"
            f" END END END")


def _moments(column: str) -> str:
    return f"coalesce(avg({column}), 0), coalesce(stddev_samp({column}), 0)"


_CELLS_SQL = f"""
SELECT model_id, net > 0, side, count(*),
       {_moments("gross")}, {_moments("net")}, {_moments("fees")}, {_moments("notional")}, {_moments("holding")},
       max(net), min(net), count(stop_loss), {_moments("stop_loss")}, count(take_profit), {_moments("take_profit")}
  FROM (SELECT model_id, side, coalesce(realized_gross_pnl, 0) AS gross, coalesce(realized_net_pnl, 0) AS net,
               coalesce(total_commission_dollars, 0) AS fees, {_NOTIONAL} AS notional, {_HOLDING} AS holding,
               {_distance("stop_loss")} AS stop_loss, {_distance("profit_target")} AS take_profit
          FROM trades
         WHERE {{models}} entry_ts_ms IS NOT NULL AND exit_ts_ms IS NOT NULL) t
 GROUP BY 1, 2, 3
"""
_ORDERED_SQL = f"""
SELECT m.id, med.holding, med.notional, last.exit_ts_ms, last.id
  FROM unnest(%s::text[]) AS m(id)
 CROSS JOIN LATERAL (
       SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {_HOLDING}) AS holding,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY {_NOTIONAL}) AS notional
         FROM trades WHERE model_id = m.id AND entry_ts_ms IS NOT NULL AND exit_ts_ms IS NOT NULL) med
 CROSS JOIN LATERAL (
       SELECT exit_ts_ms, id FROM trades
        WHERE model_id = m.id AND entry_ts_ms IS NOT NULL AND exit_ts_ms IS NOT NULL
        ORDER BY exit_ts_ms DESC, id COLLATE "C" DESC LIMIT 1) last
"""


async def list_trade_cells(conn: AsyncConnection, model_ids: list[str] | None) -> dict[str, list[TradeCell]]:
    """The cells of each model's closed round trips (entry and exit time known); a model without such
    trades is absent. ``None``: every model's (the ``= ANY`` test, a hash probe per trade, is 5-8 % of
    the pass). ``metrics.stats_of_cells`` makes a model's statistics of them."""
    # JIT compiling these expressions costs more (~0.1 s a query) than it saves on a million rows
    await conn.execute("SET LOCAL jit = off")
    cells: dict[str, list[TradeCell]] = {}
    async with _tuples(conn) as cur:
        if model_ids is None:
            await cur.execute(_CELLS_SQL.format(models=""))
        else:
            await cur.execute(_CELLS_SQL.format(models="model_id = ANY(%s) AND"), (model_ids,))
        for row in await cur.fetchall():
            n = row[3]
            m = [Moments(n, row[i], row[i + 1]) for i in (4, 6, 8, 10, 12)]
            cells.setdefault(row[0], []).append(TradeCell(
                won=row[1], side=row[2], gross=m[0], net=m[1], fees=m[2], notional=m[3], holding=m[4],
                max_net=row[14], min_net=row[15], stop_loss=Moments(*row[16:19]), take_profit=Moments(*row[19:22])))
    return cells


async def list_trade_order_stats(conn: AsyncConnection, model_ids: list[str]) -> dict[str, tuple[float, float, int, str]]:
    """Per model with closed round trips: median holding period (minutes), median notional, and the
    exit time (ms) and id of the last exited trade (ties: the greatest id)."""
    await conn.execute("SET LOCAL jit = off")
    async with _tuples(conn) as cur:
        await cur.execute(_ORDERED_SQL, (model_ids,))
        return {m: (holding, notional, exit_ms, last_id) for m, holding, notional, exit_ms, last_id in await cur.fetchall()}


async def export_snapshot(conn: AsyncConnection) -> str:
    """The snapshot of this REPEATABLE READ transaction, for ``use_snapshot`` on another connection."""
    cur = await conn.execute("SELECT pg_export_snapshot() AS snapshot")
    return (await cur.fetchone())["snapshot"]


async def use_snapshot(conn: AsyncConnection, snapshot: str) -> None:
    """After ``begin_snapshot_read``: read what the exporting transaction reads (its data, its instant)."""
    await conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))


async def list_decision_cycles(conn: AsyncConnection, model_ids: list[str]) -> list[tuple[str, int | None, float, str]]:
    """``(model_id, cycle_number, executed_at seconds, decisions JSON text)``; the caller parses the text
    (one msgspec pass per cycle is faster than psycopg's generic JSON loader). A cycle without decisions
    (SQL NULL, e.g. a failed cycle) still is an invocation, with no signals."""
    async with _tuples(conn) as cur:
        await cur.execute(
            """
            SELECT model_id, cycle_number, extract(epoch FROM executed_at)::float8, coalesce(decisions::text, '[]')
              FROM decision_cycles
             WHERE model_id = ANY(%s)
            """,
            (model_ids,),
        )
        return await cur.fetchall()


async def list_position_spans(
    conn: AsyncConnection, model_ids: list[str]
) -> list[tuple[str, str, str, int, int | None]]:
    """Every position, open or closed: ``(model_id, symbol, side, entry_ts_ms, exit_ts_ms or None)``."""
    async with _tuples(conn) as cur:
        await cur.execute(
            """
            SELECT model_id, symbol, side, entry_ts_ms, CASE WHEN status = 'closed' THEN exit_ts_ms END
              FROM positions
             WHERE model_id = ANY(%s)
            """,
            (model_ids,),
        )
        return await cur.fetchall()


async def list_equity_points(conn: AsyncConnection, model_ids: list[str]) -> list[tuple[str, int, float]]:
    """``(model_id, ts_ms, equity_usd)`` of every snapshot, by model then time."""
    async with _tuples(conn) as cur:
        await cur.execute(
            """
            SELECT model_id, ts_ms, equity_usd
              FROM account_equity_snapshots
             WHERE model_id = ANY(%s)
             ORDER BY model_id, ts_ms
            """,
            (model_ids,),
        )
        return await cur.fetchall()


async def list_last_messages(conn: AsyncConnection, model_ids: list[str]) -> list[tuple[str, int]]:
    """``(model_id, ts_ms)`` of the newest timed message of each conversation thread of the models.

    One index probe per thread (``idx_conv_msgs_conv_ts`` backwards) instead of sorting every message.
    """
    async with _tuples(conn) as cur:
        await cur.execute(
            """
            SELECT c.model_id, m.ts_ms
              FROM conversations c
              CROSS JOIN LATERAL (
                    SELECT ts_ms FROM conversation_messages
                     WHERE conversation_id = c.id AND ts_ms IS NOT NULL
                     ORDER BY ts_ms DESC
                     LIMIT 1) m
             WHERE c.model_id = ANY(%s)
            """,
            (model_ids,),
        )
        return await cur.fetchall()


# ----------------------------------------------------------------------------- analytics job: writes


async def upsert_model_analytics(
    conn: AsyncConnection, model_ids: list[str], payloads_json: list[str], updated_at: datetime, server_time_ms: int
) -> int:
    """One statement for the whole batch. A row computed at a later ``server_time_ms`` is never
    replaced by an earlier computation (a slow worker finishing late cannot roll a model back)."""
    cur = await conn.execute(
        """
        INSERT INTO model_analytics (model_id, updated_at, payload, server_time_ms)
        SELECT u.model_id, %s, u.payload::jsonb, %s
          FROM unnest(%s::text[], %s::text[]) AS u(model_id, payload)
        ON CONFLICT (model_id) DO UPDATE
           SET updated_at = EXCLUDED.updated_at, payload = EXCLUDED.payload,
               server_time_ms = EXCLUDED.server_time_ms
         WHERE model_analytics.server_time_ms <= EXCLUDED.server_time_ms
        """,
        (updated_at, server_time_ms, model_ids, payloads_json),
    )
    return cur.rowcount

