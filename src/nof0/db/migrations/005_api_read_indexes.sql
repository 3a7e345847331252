-- 005_api_read_indexes: indexes for the API's Postgres fallback (additive only).
-- depends: 003_ingest

-- /api/trades serves each model's most recent trades by exit time: one range scan per model.
CREATE INDEX idx_trades_model_exit_ts ON trades (model_id, exit_ts_ms DESC NULLS LAST, id);
