-- 003_ingest: what the ingestion pipelines (design 2.4) need beyond 001: the origin of derived rows, the fill books, pending position closes, and the market metadata's timestamp (all additive).
-- depends: 002_refresh_helpers

-- Which flow wrote a trade or a position. Fill-derived rows ('fills') are recomputed from the
-- fills ledger when a late fill arrives; 'event' rows come from trade/position events as given;
-- 'position' trades are the round trips closed by a position_close event.
ALTER TABLE trades ADD COLUMN origin TEXT NOT NULL DEFAULT 'event' CHECK (origin IN ('event', 'fills', 'position'));
ALTER TABLE positions ADD COLUMN origin TEXT NOT NULL DEFAULT 'event' CHECK (origin IN ('event', 'fills'));
CREATE INDEX idx_trades_model_origin ON trades (model_id, origin);
CREATE INDEX idx_positions_model_origin ON positions (model_id, origin);

-- The running state of each model's fill ledger after its last applied fill (ordered by ts_ms, tid):
-- open lots, realized PnL. Stored exactly (JSON numbers round-trip doubles) so applying the next fills
-- incrementally gives the same bits as folding the whole ledger again.
CREATE TABLE fill_books (
    model_id TEXT PRIMARY KEY,
    last_ts_ms BIGINT NOT NULL,
    last_tid BIGINT NOT NULL,
    state JSONB NOT NULL CHECK (jsonb_typeof(state) = 'object'),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

-- position_close events, kept as facts: a close that arrives before its position is applied when the
-- position arrives, so events may come in any order.
CREATE TABLE position_closes (
    position_id TEXT PRIMARY KEY,
    exit_price DOUBLE PRECISION NOT NULL CHECK (exit_price > 0 AND exit_price < 'Infinity'),
    exit_ts_ms BIGINT NOT NULL CHECK (exit_ts_ms > 0),
    exit_oid BIGINT,
    commission DOUBLE PRECISION,
    received_at TIMESTAMPTZ DEFAULT NOW()
);

-- When the venue published the metadata (metaAndAssetCtxs time); an older response never
-- overwrites a newer one.
ALTER TABLE market_assets ADD COLUMN ts_ms BIGINT;
