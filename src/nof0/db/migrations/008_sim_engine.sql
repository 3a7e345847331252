-- 008_sim_engine: what the paper-trading engine needs to rebuild itself from Postgres after a restart
-- (engine.md "Exchange providers / sim"): an order's time in force, trigger, client order id, leverage,
-- fill summary and journal metadata; a balance row's account settings; and a per-trader sequence that
-- orders two states written in the same millisecond (additive: old rows read as sequence 0).
-- depends: 007_maintenance

ALTER TABLE sim_orders
    ADD COLUMN tif TEXT CHECK (tif IN ('Ioc', 'Gtc', 'Alo')),
    ADD COLUMN trigger_px DOUBLE PRECISION CHECK (trigger_px > 0),
    ADD COLUMN cloid TEXT,
    ADD COLUMN leverage DOUBLE PRECISION CHECK (leverage > 0),
    ADD COLUMN avg_px DOUBLE PRECISION CHECK (avg_px > 0),
    ADD COLUMN fee_usd DOUBLE PRECISION,
    ADD COLUMN reserved_usd DOUBLE PRECISION,
    ADD COLUMN reason TEXT,
    ADD COLUMN confidence DOUBLE PRECISION,
    ADD COLUMN exit_plan JSONB,
    ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;

-- a client order id names one order of its trader: a retried request finds the first one
CREATE UNIQUE INDEX uq_sim_orders_cloid ON sim_orders (trader_id, cloid) WHERE cloid IS NOT NULL;
-- the engine reloads a trader's open orders at start
CREATE INDEX idx_sim_orders_open ON sim_orders (trader_id) WHERE status = 'open';

ALTER TABLE sim_balances
    ADD COLUMN margin_used DOUBLE PRECISION,
    ADD COLUMN funding_ms BIGINT,
    ADD COLUMN leverage JSONB,
    ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
