-- 001_domain: every table of design 2.2, with the columns later flows need (additive only).
-- Ids that become Redis key parts are limited to the key-safe set of nof0.cache.keys.


-- Reference ----------------------------------------------------------------------------------
CREATE TABLE models (
    id TEXT PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._@/-]{1,64}$'),
    display_name TEXT NOT NULL,
    trader_config JSONB DEFAULT '{}'::jsonb CHECK (jsonb_typeof(trader_config) = 'object'),
    created_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE symbols (
    symbol TEXT PRIMARY KEY CHECK (symbol ~ '^[A-Za-z0-9._@/-]{1,64}$'),
    quote_currency TEXT DEFAULT 'USD',
    created_at TIMESTAMPTZ DEFAULT NOW()
);

-- Prices -------------------------------------------------------------------------------------
CREATE TABLE price_ticks (
    id BIGSERIAL PRIMARY KEY,
    symbol TEXT NOT NULL,
    price DOUBLE PRECISION NOT NULL CHECK (price > 0 AND price < 'Infinity'),
    ts_ms BIGINT NOT NULL CHECK (ts_ms > 0),
    source TEXT DEFAULT 'hyperliquid',
    ingested_at TIMESTAMPTZ DEFAULT NOW()
);
-- The design's (symbol, ts_ms DESC) index, made unique with the source: a feed publishes one
-- price per symbol per millisecond, so (symbol, ts_ms, source) is the tick's natural key and a
-- replayed tick is a no-op (ON CONFLICT DO NOTHING). One index serves both purposes.
CREATE UNIQUE INDEX idx_price_ticks_symbol_ts ON price_ticks (symbol, ts_ms DESC, source) NULLS NOT DISTINCT;

CREATE TABLE price_latest (
    symbol TEXT PRIMARY KEY,
    price DOUBLE PRECISION NOT NULL CHECK (price > 0 AND price < 'Infinity'),
    ts_ms BIGINT NOT NULL CHECK (ts_ms > 0),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

-- Accounts -----------------------------------------------------------------------------------
CREATE TABLE accounts (
    model_id TEXT PRIMARY KEY,
    base_currency TEXT NOT NULL DEFAULT 'USD',
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    -- since-inception facts (nof1 /api/since-inception-values): starting capital, start time
    -- (microsecond precision, as nof1 publishes it) and the record's stable id.
    starting_capital_usd DOUBLE PRECISION NOT NULL DEFAULT 10000 CHECK (starting_capital_usd > 0),
    inception_at TIMESTAMPTZ,
    inception_id UUID NOT NULL DEFAULT gen_random_uuid()
);

CREATE TABLE account_equity_snapshots (
    id BIGSERIAL PRIMARY KEY,
    model_id TEXT NOT NULL,
    ts_ms BIGINT NOT NULL CHECK (ts_ms > 0),
    equity_usd DOUBLE PRECISION NOT NULL CHECK (equity_usd > '-Infinity' AND equity_usd < 'Infinity'),
    realized_pnl DOUBLE PRECISION DEFAULT 0,
    unrealized_pnl DOUBLE PRECISION DEFAULT 0,
    run_id UUID DEFAULT gen_random_uuid(),
    created_at TIMESTAMPTZ DEFAULT NOW(),
    CONSTRAINT uq_equity_model_ts UNIQUE (model_id, ts_ms)  -- replay-safe snapshots (design 2.2)
);
CREATE INDEX idx_equity_model_ts ON account_equity_snapshots (model_id, ts_ms DESC);

-- Positions & trades -------------------------------------------------------------------------
CREATE TABLE positions (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('long','short')),
    entry_price DOUBLE PRECISION NOT NULL CHECK (entry_price > 0 AND entry_price < 'Infinity'),
    quantity DOUBLE PRECISION NOT NULL CHECK (quantity >= 0 AND quantity < 'Infinity'),  -- size; side gives the sign
    leverage DOUBLE PRECISION CHECK (leverage > 0),
    confidence DOUBLE PRECISION CHECK (confidence >= 0 AND confidence <= 1),
    entry_ts_ms BIGINT NOT NULL CHECK (entry_ts_ms > 0),
    commission DOUBLE PRECISION,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','closed')),
    exit_ts_ms BIGINT,
    exit_price DOUBLE PRECISION,
    metadata JSONB DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    -- nof1 position fields that are facts, not mark-to-market values
    entry_oid BIGINT,
    exit_plan JSONB DEFAULT '{}'::jsonb,
    CHECK (status = 'open' OR exit_ts_ms IS NOT NULL)
);
CREATE INDEX idx_positions_open ON positions (model_id, symbol) WHERE status = 'open';

CREATE TABLE trades (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('long','short')),
    trade_type TEXT,
    quantity DOUBLE PRECISION,  -- signed like nof1: negative for shorts
    leverage DOUBLE PRECISION,
    confidence DOUBLE PRECISION,
    entry_price DOUBLE PRECISION,
    entry_ts_ms BIGINT,
    exit_price DOUBLE PRECISION,
    exit_ts_ms BIGINT,
    realized_gross_pnl DOUBLE PRECISION,
    realized_net_pnl DOUBLE PRECISION,
    total_commission_dollars DOUBLE PRECISION,
    entry_oid BIGINT,
    exit_oid BIGINT,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    -- the rest of nof1's trade shape, kept field for field
    trade_id TEXT,
    entry_sz DOUBLE PRECISION,
    exit_sz DOUBLE PRECISION,
    entry_tid BIGINT,
    exit_tid BIGINT,
    entry_crossed BOOLEAN,
    exit_crossed BOOLEAN,
    entry_liquidation JSONB,
    exit_liquidation JSONB,
    entry_commission_dollars DOUBLE PRECISION,
    exit_commission_dollars DOUBLE PRECISION,
    entry_closed_pnl DOUBLE PRECISION,
    exit_closed_pnl DOUBLE PRECISION,
    exit_plan JSONB DEFAULT '{}'::jsonb,
    CHECK (exit_ts_ms IS NULL OR entry_ts_ms IS NULL OR exit_ts_ms >= entry_ts_ms)
);
CREATE INDEX idx_trades_model_entry_ts ON trades (model_id, entry_ts_ms DESC);
CREATE INDEX idx_trades_exit_oid ON trades (exit_oid);
CREATE INDEX idx_trades_exit_ts ON trades (exit_ts_ms DESC);

-- Every execution as received; (model_id, tid) makes a replayed fill a no-op.
CREATE TABLE fills (
    model_id TEXT NOT NULL,
    tid BIGINT NOT NULL,
    oid BIGINT,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy','sell')),
    price DOUBLE PRECISION NOT NULL CHECK (price > 0 AND price < 'Infinity'),
    size DOUBLE PRECISION NOT NULL CHECK (size > 0 AND size < 'Infinity'),
    fee_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    ts_ms BIGINT NOT NULL CHECK (ts_ms > 0),
    crossed BOOLEAN,
    leverage DOUBLE PRECISION,
    confidence DOUBLE PRECISION,
    exit_plan JSONB,
    liquidation JSONB,
    ingested_at TIMESTAMPTZ DEFAULT NOW(),
    PRIMARY KEY (model_id, tid)
);
CREATE INDEX idx_fills_model_ts ON fills (model_id, ts_ms);

-- Trader state (proposed) -------------------------------------------------------------------
CREATE TABLE trader_state (
    trader_id TEXT PRIMARY KEY,
    exchange_provider TEXT NOT NULL,
    market_provider TEXT NOT NULL,
    allocation_pct DOUBLE PRECISION CHECK (allocation_pct >= 0 AND allocation_pct <= 100),
    cooldown JSONB DEFAULT '{}'::jsonb,
    risk_guards JSONB DEFAULT '{}'::jsonb,
    last_decision_at TIMESTAMPTZ,
    pause_until TIMESTAMPTZ,
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

-- Analytics ----------------------------------------------------------------------------------
CREATE TABLE model_analytics (
    model_id TEXT PRIMARY KEY,
    updated_at TIMESTAMPTZ NOT NULL,
    payload JSONB NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    server_time_ms BIGINT NOT NULL
);

-- Conversations ------------------------------------------------------------------------------
CREATE TABLE conversations (
    id BIGSERIAL PRIMARY KEY,
    model_id TEXT NOT NULL,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    thread TEXT NOT NULL DEFAULT 'main',  -- one running thread per model unless a writer names another
    CONSTRAINT uq_conversations_model_thread UNIQUE (model_id, thread)
);

CREATE TABLE conversation_messages (
    id BIGSERIAL PRIMARY KEY,
    conversation_id BIGINT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('system','user','assistant')),
    content TEXT NOT NULL,
    ts_ms BIGINT,
    metadata JSONB DEFAULT '{}'::jsonb,
    content_md5 TEXT GENERATED ALWAYS AS (md5(content)) STORED
);
CREATE INDEX idx_conv_msgs_conv_ts ON conversation_messages (conversation_id, ts_ms);
-- A message's natural key: replaying it is a no-op.
CREATE UNIQUE INDEX uq_conv_msgs_natural ON conversation_messages (conversation_id, ts_ms, role, content_md5)
    NULLS NOT DISTINCT;

-- Journaling (proposed) ----------------------------------------------------------------------
CREATE TABLE decision_cycles (
    id BIGSERIAL PRIMARY KEY,
    model_id TEXT NOT NULL,
    cycle_number INTEGER,
    prompt_digest TEXT,
    cot_trace TEXT,
    decisions JSONB,
    success BOOLEAN DEFAULT FALSE,
    error_message TEXT,
    executed_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT uq_decision_cycles_model_cycle UNIQUE (model_id, cycle_number)
);
CREATE INDEX idx_decision_cycles_model_exec ON decision_cycles (model_id, executed_at DESC);

-- Market metadata (proposed) -----------------------------------------------------------------
CREATE TABLE market_assets (
    provider TEXT NOT NULL,
    symbol TEXT NOT NULL,
    name TEXT,
    sz_decimals INT CHECK (sz_decimals >= 0),
    max_leverage DOUBLE PRECISION CHECK (max_leverage > 0),
    only_isolated BOOLEAN,
    margin_table_id INT,
    is_delisted BOOLEAN,
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    PRIMARY KEY (provider, symbol)
);

CREATE TABLE market_asset_ctx (
    provider TEXT NOT NULL,
    symbol TEXT NOT NULL,
    funding DOUBLE PRECISION,
    open_interest DOUBLE PRECISION,
    oracle_px DOUBLE PRECISION,
    mark_px DOUBLE PRECISION,
    mid_px DOUBLE PRECISION,
    impact_pxs JSONB,
    prev_day_px DOUBLE PRECISION,
    day_ntl_vlm DOUBLE PRECISION,
    day_base_vlm DOUBLE PRECISION,
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    premium DOUBLE PRECISION,
    ts_ms BIGINT,
    PRIMARY KEY (provider, symbol)
);

-- Paper trading (design 2.4 Simulator: "introduce sim_orders, sim_balances") ---------------
CREATE TABLE sim_orders (
    trader_id TEXT NOT NULL,
    oid BIGINT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy','sell')),
    order_type TEXT NOT NULL DEFAULT 'limit' CHECK (order_type IN ('limit','market','stop','take_profit')),
    price DOUBLE PRECISION CHECK (price > 0),
    size DOUBLE PRECISION NOT NULL CHECK (size > 0),
    filled_size DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (filled_size >= 0),
    status TEXT NOT NULL CHECK (status IN ('open','filled','canceled','rejected')),
    reduce_only BOOLEAN NOT NULL DEFAULT FALSE,
    ts_ms BIGINT NOT NULL CHECK (ts_ms > 0),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    PRIMARY KEY (trader_id, oid)
);

CREATE TABLE sim_balances (
    trader_id TEXT NOT NULL,
    asset TEXT NOT NULL,
    total DOUBLE PRECISION NOT NULL,
    available DOUBLE PRECISION NOT NULL,
    ts_ms BIGINT NOT NULL CHECK (ts_ms > 0),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    PRIMARY KEY (trader_id, asset)
);

-- Ingest dead letters: every rejected event with its raw text and reason. The md5 of the raw
-- text keeps a replayed bad line from being recorded twice.
CREATE TABLE ingest_dead_letters (
    id BIGSERIAL PRIMARY KEY,
    source TEXT NOT NULL,
    line_no INTEGER,
    event_type TEXT,
    field TEXT,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    raw_md5 TEXT GENERATED ALWAYS AS (md5(raw)) STORED,
    received_at TIMESTAMPTZ DEFAULT NOW(),
    CONSTRAINT uq_dead_letters_raw UNIQUE (raw_md5)
);

-- Scheduled jobs: last run, duration and failures (design 2.5, 4.3).
CREATE TABLE job_runs (
    job TEXT PRIMARY KEY,
    last_started_at TIMESTAMPTZ,
    last_finished_at TIMESTAMPTZ,
    last_duration_ms DOUBLE PRECISION,
    last_status TEXT CHECK (last_status IN ('running','ok','failed')),
    last_error TEXT,
    runs BIGINT NOT NULL DEFAULT 0,
    failures BIGINT NOT NULL DEFAULT 0
);
