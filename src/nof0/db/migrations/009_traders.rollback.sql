-- 009_traders rollback
ALTER TABLE decision_cycles
    DROP COLUMN IF EXISTS finished_at,
    DROP COLUMN IF EXISTS run_id,
    DROP COLUMN IF EXISTS template_digest,
    DROP COLUMN IF EXISTS cot_trace_summary;
DROP TABLE IF EXISTS llm_calls;
