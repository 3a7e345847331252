-- 009_traders: the traders' journal (engine.md "The traders", "Journal").
-- depends: 007_maintenance

-- Every call of a trader's model: what it cost and how it ended. The daily budget of a trader is a
-- sum over these rows, so it survives restarts. Key: (trader_id, cycle_number, attempt).
CREATE TABLE llm_calls (
    trader_id TEXT NOT NULL,
    cycle_number INTEGER NOT NULL CHECK (cycle_number >= 0),
    attempt INTEGER NOT NULL CHECK (attempt >= 1),
    model TEXT NOT NULL,
    provider_model TEXT,
    ts_ms BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (latency_ms >= 0),
    prompt_tokens INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'truncated', 'invalid_reply', 'timeout', 'rate_limited',
                                             'server_error', 'connection_error', 'refused', 'error')),
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (trader_id, cycle_number, attempt)
);
-- the budget's question: one trader's calls since the start of a day
CREATE INDEX idx_llm_calls_trader_ts ON llm_calls (trader_id, ts_ms);

-- nof1's per-cycle conversation item needs the summary line; a cycle also records its prompt
-- template's version, the process run that made it and when its reply was in.
ALTER TABLE decision_cycles
    ADD COLUMN cot_trace_summary TEXT,
    ADD COLUMN template_digest TEXT,
    ADD COLUMN run_id TEXT,
    ADD COLUMN finished_at TIMESTAMPTZ;
