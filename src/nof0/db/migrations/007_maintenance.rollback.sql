-- 007_maintenance rollback
DROP INDEX IF EXISTS idx_decision_cycles_executed_brin;
DROP INDEX IF EXISTS idx_price_ticks_ts_brin;
ALTER TABLE fills RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor,
                         autovacuum_vacuum_insert_scale_factor);
ALTER TABLE account_equity_snapshots RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor,
                                            autovacuum_vacuum_insert_scale_factor);
ALTER TABLE trades RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
ALTER TABLE price_ticks RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor,
                               autovacuum_vacuum_insert_scale_factor);
