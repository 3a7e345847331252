"""Read SQL of the API's Postgres fallback (design 6 reference queries, shaped for nof1's endpoints).

Every statement reads tables, not the materialized views, for the fact endpoints: a fact written a
moment ago must be served even before the next ``refresh_views_nof0()``. The derived endpoints
(leaderboard, analytics) read ``analytics.repository``. Never commits; the caller owns the connection.
"""

from __future__ import annotations

from typing import Any, Sequence

from psycopg import AsyncConnection

__all__ = [
    "list_latest_prices",
    "list_open_positions",
    "list_recent_trades",
    "list_recent_messages",
    "list_recent_cycles",
    "list_since_inception_facts",
    "list_hourly_account_series",
    "list_positions_at",
    "list_traders",
    "model_exists",
    "ping",
]

Row = dict[str, Any]


async def list_latest_prices(conn: AsyncConnection) -> list[Row]:
    cur = await conn.execute("SELECT symbol, price, ts_ms FROM price_latest ORDER BY symbol")
    return await cur.fetchall()


async def list_open_positions(conn: AsyncConnection) -> list[Row]:
    """Every model with its open positions (design 6), each marked at its symbol's latest price.

    A model without open positions yields one row whose position columns are null (``id`` null).
    """
    cur = await conn.execute(
        """
        SELECT m.id AS account_model_id, p.*, pl.price AS mark_price
          FROM models m
          LEFT JOIN positions p ON p.model_id = m.id AND p.status = 'open'
          LEFT JOIN price_latest pl ON pl.symbol = p.symbol
         ORDER BY m.id, p.symbol, p.entry_ts_ms
        """
    )
    return await cur.fetchall()


async def list_recent_trades(conn: AsyncConnection, per_model: int) -> list[Row]:
    """Each model's ``per_model`` most recent closed trades, newest exit first overall.

    One index range scan per model (``idx_trades_model_exit_ts``, migration 005) instead of a sort of
    the whole table. Models come from ``models``: ingestion rejects trades of unknown models.
    """
    cur = await conn.execute(
        """
        SELECT t.*
          FROM models m
         CROSS JOIN LATERAL (
                SELECT *
                  FROM trades
                 WHERE trades.model_id = m.id
                 ORDER BY exit_ts_ms DESC NULLS LAST, id
                 LIMIT %s) t
         ORDER BY t.exit_ts_ms DESC NULLS LAST, t.id
        """,
        (per_model,),
    )
    return await cur.fetchall()


async def list_recent_messages(conn: AsyncConnection, window: int) -> list[Row]:
    """Each model's ``window`` most recent messages (all its threads) that belong to no decision cycle
    (imported chats, a producer's own messages), oldest first per model. A cycle's messages are served
    with their cycle (:func:`list_recent_cycles`)."""
    cur = await conn.execute(
        """
        SELECT cm.model_id, msg.role, msg.content, msg.ts_ms
          FROM (SELECT DISTINCT model_id FROM conversations) cm
         CROSS JOIN LATERAL (
                SELECT x.id, x.role, x.content, x.ts_ms
                  FROM conversation_messages x
                  JOIN conversations c ON c.id = x.conversation_id
                 WHERE c.model_id = cm.model_id AND x.metadata->'cycle' IS NULL
                 ORDER BY x.ts_ms DESC NULLS LAST, x.id DESC
                 LIMIT %s) msg
         ORDER BY cm.model_id, msg.ts_ms NULLS FIRST, msg.id
        """,
        (window,),
    )
    return await cur.fetchall()


async def list_recent_cycles(conn: AsyncConnection, per_model: int) -> list[Row]:
    """Each model's ``per_model`` latest decision cycles, newest first overall, each with the messages
    the engine wrote for it (same thread, the cycle's millisecond, ``metadata.cycle`` = its number) as
    a JSON array ordered system, user, assistant."""
    cur = await conn.execute(
        """
        SELECT d.model_id, d.cycle_number, d.executed_at, d.finished_at, d.run_id, d.cot_trace,
               d.cot_trace_summary, d.decisions, d.success, d.error_message, d.prompt_digest, d.template_digest,
               coalesce((
                   SELECT json_agg(json_build_object('role', x.role, 'content', x.content, 'ts_ms', x.ts_ms)
                                   ORDER BY CASE x.role WHEN 'system' THEN 0 WHEN 'user' THEN 1 ELSE 2 END, x.id)
                     FROM conversations c
                     JOIN conversation_messages x ON x.conversation_id = c.id
                    WHERE c.model_id = d.model_id AND c.thread = 'main'
                      AND x.ts_ms = floor(extract(epoch FROM d.executed_at) * 1000)::bigint
                      AND x.metadata->'cycle' = to_jsonb(d.cycle_number)), '[]'::json) AS messages
          FROM models m
         CROSS JOIN LATERAL (
                SELECT * FROM decision_cycles dc
                 WHERE dc.model_id = m.id
                 ORDER BY dc.executed_at DESC, dc.cycle_number DESC
                 LIMIT %s) d
         ORDER BY d.executed_at DESC, d.model_id, d.cycle_number DESC
        """,
        (per_model,),
    )
    return await cur.fetchall()


async def list_since_inception_facts(conn: AsyncConnection) -> list[Row]:
    """The rows of ``v_since_inception`` computed live from the tables, in nof1's order (by id)."""
    cur = await conn.execute(
        """
        SELECT m.id AS model_id,
               a.inception_id AS id,
               coalesce(a.starting_capital_usd, 10000)::double precision AS nav_since_inception,
               coalesce(a.inception_at, to_timestamp(f.first_ts_ms / 1000.0), m.created_at) AS inception_at,
               (SELECT count(*) FROM decision_cycles d WHERE d.model_id = m.id)::integer AS num_invocations
          FROM models m
          LEFT JOIN accounts a ON a.model_id = m.id
         CROSS JOIN LATERAL (
                SELECT min(ts_ms) AS first_ts_ms FROM account_equity_snapshots e WHERE e.model_id = m.id) f
         WHERE a.model_id IS NOT NULL OR f.first_ts_ms IS NOT NULL
         ORDER BY a.inception_id NULLS LAST, m.id
        """
    )
    return await cur.fetchall()


async def list_hourly_account_series(conn: AsyncConnection) -> list[Row]:
    """The last equity snapshot of every hour since each model's inception (docs/api.md).

    Markers count from the model's own inception: ``accounts.inception_at``, else its first
    snapshot. ``sharpe`` is the leaderboard's definition (mean over sample standard deviation of the
    per-snapshot simple returns, not annualised) over the snapshots up to that one.
    """
    cur = await conn.execute(
        """
        WITH inception AS (
            SELECT m.id AS model_id,
                   coalesce(a.starting_capital_usd, 10000)::double precision AS capital,
                   coalesce(floor(extract(epoch FROM a.inception_at) * 1000)::bigint, f.first_ts_ms) AS inception_ms
              FROM models m
              LEFT JOIN accounts a ON a.model_id = m.id
             CROSS JOIN LATERAL (
                    SELECT min(ts_ms) AS first_ts_ms FROM account_equity_snapshots e WHERE e.model_id = m.id) f
             WHERE f.first_ts_ms IS NOT NULL
        ), series AS (
            SELECT e.model_id, e.ts_ms, e.equity_usd,
                   coalesce(e.realized_pnl, 0) AS realized_pnl, coalesce(e.unrealized_pnl, 0) AS unrealized_pnl,
                   i.capital, i.inception_ms,
                   e.equity_usd / nullif(lag(e.equity_usd) OVER w, 0) - 1 AS r
              FROM account_equity_snapshots e
              JOIN inception i ON i.model_id = e.model_id
             WHERE e.ts_ms >= i.inception_ms
            WINDOW w AS (PARTITION BY e.model_id ORDER BY e.ts_ms)
        ), running AS (
            SELECT s.*,
                   count(r) OVER w AS n_returns, avg(r) OVER w AS mean_r, stddev_samp(r) OVER w AS sd_r,
                   floor((ts_ms - inception_ms) / 3600000.0)::integer AS hourly_marker,
                   floor((ts_ms - inception_ms) / 60000.0)::integer AS minute_marker
              FROM series s
            WINDOW w AS (PARTITION BY model_id ORDER BY ts_ms ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        )
        SELECT DISTINCT ON (hourly_marker, model_id)
               model_id, ts_ms, equity_usd, realized_pnl, unrealized_pnl, capital, inception_ms, hourly_marker,
               minute_marker,
               (CASE WHEN n_returns >= 2 AND sd_r > 0 THEN mean_r / sd_r ELSE 0 END)::double precision AS sharpe
          FROM running
         ORDER BY hourly_marker, model_id, ts_ms DESC
        """
    )
    return await cur.fetchall()


async def list_positions_at(conn: AsyncConnection, model_ids: Sequence[str], at_ms: Sequence[int]) -> list[Row]:
    """Positions open at each (model, time) pair, marked at the last tick at or before that time.

    A position was open at ``t`` when it was entered at or before ``t`` and is still open or exited
    after ``t``. One statement for every pair (arrays), never one per record.
    """
    cur = await conn.execute(
        """
        SELECT r.model_id AS at_model_id, r.ts_ms AS at_ms, p.*, mark.price AS mark_price
          FROM unnest(%s::text[], %s::bigint[]) AS r(model_id, ts_ms)
          JOIN positions p
            ON p.model_id = r.model_id AND p.entry_ts_ms <= r.ts_ms
           AND (p.status = 'open' OR p.exit_ts_ms > r.ts_ms)
          LEFT JOIN LATERAL (
                SELECT t.price FROM price_ticks t
                 WHERE t.symbol = p.symbol AND t.ts_ms <= r.ts_ms
                 ORDER BY t.ts_ms DESC
                 LIMIT 1) mark ON true
         ORDER BY r.model_id, r.ts_ms, p.symbol, p.entry_ts_ms
        """,
        (list(model_ids), list(at_ms)),
    )
    return await cur.fetchall()


async def list_traders(conn: AsyncConnection, day_start_ms: int = 0) -> list[Row]:
    """Every model with its trader state (null columns for a model that is not traded here, e.g. an
    imported one), its latest decision cycle's time and its model calls since ``day_start_ms`` (the
    daily budget's spend, from ``llm_calls``), for ``/api/traders``.

    ``decision_interval_s`` comes from ``models.trader_config`` (``nof0 traders sync`` stores the
    trader's configuration there, durations in seconds). The latest cycle is one backward scan of
    ``idx_decision_cycles_model_exec`` per model.
    """
    cur = await conn.execute(
        """
        SELECT m.id, m.display_name,
               m.trader_config ->> 'model' AS llm_model,
               CASE WHEN jsonb_typeof(m.trader_config -> 'decision_interval') = 'number'
                    THEN (m.trader_config ->> 'decision_interval')::double precision END AS decision_interval_s,
               ts.trader_id IS NOT NULL AS has_state,
               ts.exchange_provider, ts.market_provider, ts.allocation_pct,
               ts.last_decision_at, ts.pause_until,
               last_cycle.executed_at AS last_cycle_at, last_cycle.cycle_number AS last_cycle_number,
               usage.tokens AS tokens_today, usage.cost_usd AS cost_usd_today, usage.calls AS calls_today,
               (m.trader_config ->> 'daily_budget_usd')::double precision AS daily_budget_usd,
               (m.trader_config ->> 'daily_budget_tokens')::bigint AS daily_budget_tokens
          FROM models m
          LEFT JOIN trader_state ts ON ts.trader_id = m.id
          LEFT JOIN LATERAL (
                SELECT d.executed_at, d.cycle_number FROM decision_cycles d
                 WHERE d.model_id = m.id
                 ORDER BY d.executed_at DESC
                 LIMIT 1) last_cycle ON true
          LEFT JOIN LATERAL (
                SELECT coalesce(sum(c.prompt_tokens + c.completion_tokens), 0)::bigint AS tokens,
                       coalesce(sum(c.cost_usd), 0)::double precision AS cost_usd, count(*)::bigint AS calls
                  FROM llm_calls c WHERE c.trader_id = m.id AND c.ts_ms >= %s) usage ON true
         ORDER BY m.id
        """,
        (day_start_ms,),
    )
    return await cur.fetchall()


async def model_exists(conn: AsyncConnection, model_id: str) -> bool:
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM models WHERE id = %s) AS present", (model_id,))
    row = await cur.fetchone()
    return bool(row and row["present"])


async def ping(conn: AsyncConnection) -> None:
    await conn.execute("SELECT 1")
