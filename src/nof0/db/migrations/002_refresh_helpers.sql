-- 002_refresh_helpers: the three materialized views of design 2.3 and refresh_views_nof0().
-- Each view has a unique index, so all three refresh CONCURRENTLY (readers are never blocked).
-- depends: 001_domain

CREATE MATERIALIZED VIEW v_crypto_prices_latest AS
SELECT symbol, price, ts_ms, updated_at
FROM price_latest;
CREATE UNIQUE INDEX uq_v_crypto_prices_latest ON v_crypto_prices_latest (symbol);

-- Leaderboard (nof1 /api/leaderboard), from the facts:
--   equity       latest equity snapshot; the starting capital when a model has none yet
--   return_pct   (equity / starting_capital_usd - 1) * 100
--   sharpe       mean / sample standard deviation of the per-snapshot simple returns of equity,
--                not annualised; 0 with fewer than two returns or no variation; a snapshot after
--                an equity below one cent has no return
--   num_trades, num_wins (net pnl > 0), num_losses (net pnl < 0),
--   win_dollars  sum of winning net pnl;  lose_dollars  sum of losing net pnl (negative)
CREATE MATERIALIZED VIEW v_leaderboard AS
WITH latest AS (
    SELECT DISTINCT ON (model_id) model_id, ts_ms, equity_usd
    FROM account_equity_snapshots
    ORDER BY model_id, ts_ms DESC
), returns AS (
    -- A return needs a previous equity of at least one cent: dividing by a vanishing (or negative)
    -- equity means nothing and could overflow double precision, failing every refresh after it.
    SELECT model_id,
           CASE WHEN prev >= 0.01 THEN equity_usd / prev - 1 END AS r
    FROM (SELECT model_id, equity_usd,
                 lag(equity_usd) OVER (PARTITION BY model_id ORDER BY ts_ms) AS prev
            FROM account_equity_snapshots) s
), sharpe AS (
    SELECT model_id,
           CASE WHEN count(r) >= 2 AND stddev_samp(r) > 0 THEN avg(r) / stddev_samp(r) ELSE 0 END AS sharpe
    FROM returns
    GROUP BY model_id
), trade_stats AS (
    SELECT model_id,
           count(*) AS num_trades,
           count(*) FILTER (WHERE realized_net_pnl > 0) AS num_wins,
           count(*) FILTER (WHERE realized_net_pnl < 0) AS num_losses,
           coalesce(sum(realized_net_pnl) FILTER (WHERE realized_net_pnl > 0), 0) AS win_dollars,
           coalesce(sum(realized_net_pnl) FILTER (WHERE realized_net_pnl < 0), 0) AS lose_dollars
    FROM trades
    GROUP BY model_id
)
SELECT m.id AS model_id,
       m.display_name,
       coalesce(l.equity_usd, a.starting_capital_usd, 10000)::double precision AS equity,
       ((coalesce(l.equity_usd, a.starting_capital_usd, 10000)
         / coalesce(a.starting_capital_usd, 10000)) - 1) * 100 AS return_pct,
       coalesce(s.sharpe, 0)::double precision AS sharpe,
       coalesce(t.num_trades, 0)::integer AS num_trades,
       coalesce(t.num_wins, 0)::integer AS num_wins,
       coalesce(t.num_losses, 0)::integer AS num_losses,
       coalesce(t.win_dollars, 0)::double precision AS win_dollars,
       coalesce(t.lose_dollars, 0)::double precision AS lose_dollars,
       l.ts_ms AS equity_ts_ms
FROM models m
LEFT JOIN accounts a ON a.model_id = m.id
LEFT JOIN latest l ON l.model_id = m.id
LEFT JOIN sharpe s ON s.model_id = m.id
LEFT JOIN trade_stats t ON t.model_id = m.id;
CREATE UNIQUE INDEX uq_v_leaderboard ON v_leaderboard (model_id);
CREATE INDEX idx_v_leaderboard_return ON v_leaderboard (return_pct DESC);

-- Since inception (nof1 /api/since-inception-values): one row per model with an account or
-- equity history: starting capital, inception time (the account's, else the first snapshot's),
-- invocation count (decision cycles) and the extent of the equity series.
CREATE MATERIALIZED VIEW v_since_inception AS
WITH series AS (
    SELECT model_id, min(ts_ms) AS first_ts_ms, max(ts_ms) AS last_ts_ms, count(*) AS num_snapshots
    FROM account_equity_snapshots
    GROUP BY model_id
), invocations AS (
    SELECT model_id, count(*) AS num_invocations
    FROM decision_cycles
    GROUP BY model_id
)
SELECT m.id AS model_id,
       a.inception_id AS id,
       coalesce(a.starting_capital_usd, 10000)::double precision AS nav_since_inception,
       coalesce(a.inception_at, to_timestamp(s.first_ts_ms / 1000.0), m.created_at) AS inception_at,
       coalesce(i.num_invocations, 0)::integer AS num_invocations,
       s.first_ts_ms,
       s.last_ts_ms,
       coalesce(s.num_snapshots, 0)::integer AS num_snapshots
FROM models m
LEFT JOIN accounts a ON a.model_id = m.id
LEFT JOIN series s ON s.model_id = m.id
LEFT JOIN invocations i ON i.model_id = m.id
WHERE a.model_id IS NOT NULL OR s.model_id IS NOT NULL;
CREATE UNIQUE INDEX uq_v_since_inception ON v_since_inception (model_id);

-- Refresh all three views CONCURRENTLY. The transaction-scoped advisory lock makes concurrent
-- callers queue instead of racing; works on an empty and on a populated database.
CREATE FUNCTION refresh_views_nof0() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('nof0.refresh_views'));
    REFRESH MATERIALIZED VIEW CONCURRENTLY v_crypto_prices_latest;
    REFRESH MATERIALIZED VIEW CONCURRENTLY v_leaderboard;
    REFRESH MATERIALIZED VIEW CONCURRENTLY v_since_inception;
END;
$$;
