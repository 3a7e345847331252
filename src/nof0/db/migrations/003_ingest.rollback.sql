-- Rollback of 003_ingest.
ALTER TABLE market_assets DROP COLUMN IF EXISTS ts_ms;
DROP TABLE IF EXISTS position_closes, fill_books;
DROP INDEX IF EXISTS idx_positions_model_origin, idx_trades_model_origin;
ALTER TABLE positions DROP COLUMN IF EXISTS origin;
ALTER TABLE trades DROP COLUMN IF EXISTS origin;
