-- Fencing tokens of the traders' leases (docs/scaling.md): the highest token that wrote for each trader.
-- A write carrying a lower token comes from an engine process that lost its lease: the trader_state and
-- decision_cycle stages refuse it (traders/fencing.py).
CREATE TABLE IF NOT EXISTS trader_fencing (
    trader_id  text PRIMARY KEY,
    token      bigint NOT NULL CHECK (token >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
