"""SQL of the derived data: leaderboard, since-inception and stored analytics, and the fact reads and
``model_analytics`` upsert of the analytics job (design 2.4 Analytics). Never commits.

The API's Postgres fallback uses the first reads; the analytics job the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from nof0.analytics.metrics import TradeFacts

__all__ = [
    "list_leaderboard",
    "list_since_inception",
    "get_model_analytics",
    "list_model_analytics",
    "begin_snapshot_read",
    "list_model_ids",
    "list_closed_trades",
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


async def list_closed_trades(conn: AsyncConnection, model_ids: list[str]) -> list[TradeFacts]:
    """Closed round trips (entry and exit time known) of the models, as the analytics inputs.

    Missing numbers read as 0. Of the exit plan only numeric, positive, finite stop_loss and
    profit_target levels are kept: they are all the analytics use (non-numeric levels count as absent).
    """
    async with _tuples(conn) as cur:
        await cur.execute(
            """
            SELECT id, model_id, symbol, side,
                   coalesce(quantity, 0), coalesce(entry_price, 0), coalesce(exit_price, 0),
                   entry_ts_ms, exit_ts_ms,
                   coalesce(realized_gross_pnl, 0), coalesce(realized_net_pnl, 0),
                   coalesce(total_commission_dollars, 0),
                   coalesce(entry_commission_dollars, 0), coalesce(exit_commission_dollars, 0),
                   coalesce(leverage, 0), coalesce(confidence, 0),
                   CASE WHEN jsonb_typeof(exit_plan -> 'stop_loss') = 'number'
                         AND (exit_plan ->> 'stop_loss')::numeric BETWEEN 0 AND 1e300
                        THEN (exit_plan ->> 'stop_loss')::float8 END,
                   CASE WHEN jsonb_typeof(exit_plan -> 'profit_target') = 'number'
                         AND (exit_plan ->> 'profit_target')::numeric BETWEEN 0 AND 1e300
                        THEN (exit_plan ->> 'profit_target')::float8 END
              FROM trades
             WHERE model_id = ANY(%s) AND entry_ts_ms IS NOT NULL AND exit_ts_ms IS NOT NULL
            """,
            (model_ids,),
        )
        rows = await cur.fetchall()
    return [
        TradeFacts(
            id=tid, model_id=mid, symbol=sym, side=side, quantity=qty, entry_price=entry_px,
            exit_price=exit_px, entry_time_s=entry_ms / 1000, exit_time_s=exit_ms / 1000,
            realized_gross_pnl=gross, realized_net_pnl=net, total_commission_dollars=fees,
            entry_commission_dollars=entry_fee, exit_commission_dollars=exit_fee, leverage=lev,
            confidence=conf, exit_plan=_exit_plan(stop, target),
        )
        for (tid, mid, sym, side, qty, entry_px, exit_px, entry_ms, exit_ms, gross, net, fees, entry_fee,
             exit_fee, lev, conf, stop, target) in rows
    ]


_NO_PLAN: dict[str, float] = {}


def _exit_plan(stop_loss: float | None, profit_target: float | None) -> dict[str, float]:
    if stop_loss is None and profit_target is None:
        return _NO_PLAN  # shared and never mutated: TradeFacts is frozen and metrics only read it
    plan = {}
    if stop_loss is not None:
        plan["stop_loss"] = stop_loss
    if profit_target is not None:
        plan["profit_target"] = profit_target
    return plan


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

