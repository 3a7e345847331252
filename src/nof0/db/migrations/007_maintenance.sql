-- 007_maintenance: autovacuum tuning for the high-churn tables, BRIN indexes for retention (design 2.5).
-- depends: 005_api_read_indexes

-- The defaults (vacuum at 20 % dead rows, analyze at 10 % changed rows) let large, fast-growing
-- tables go long without statistics or vacuum: the planner then misjudges the newest rows (the
-- ones every API read wants) and retention deletes leave bloat behind. Trigger both much earlier.
-- autovacuum_vacuum_insert_scale_factor keeps the visibility map of append-mostly tables current,
-- so index-only scans stay index-only.
ALTER TABLE price_ticks SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.01,
                             autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE trades SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE account_equity_snapshots SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02,
                                          autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE fills SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02,
                       autovacuum_vacuum_insert_scale_factor = 0.05);

-- The retention job finds the rows older than its cutoff with these. Rows arrive roughly in time
-- order, so a BRIN index (a few pages, near-free on the tick insert path) narrows the search to the
-- old block ranges instead of a full scan per run.
CREATE INDEX idx_price_ticks_ts_brin ON price_ticks USING brin (ts_ms);
CREATE INDEX idx_decision_cycles_executed_brin ON decision_cycles USING brin (executed_at);
