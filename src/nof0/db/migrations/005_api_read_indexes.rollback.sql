-- 005_api_read_indexes rollback
DROP INDEX IF EXISTS idx_trades_model_exit_ts;
