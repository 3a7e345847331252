-- 011_trade_outbox: the transactional outbox of the trades stream (nof0.trades.outbox).

-- One row per trade change (op add, update or delete), inserted in the transaction that made the
-- change; seq (a sequence, never reused) gives the stream entry id <seq>-0. fields are the stream
-- entry's field/value pairs in order, as a JSON array of strings. The publisher orders commits with
-- the advisory lock described in nof0.trades.outbox.
CREATE TABLE IF NOT EXISTS trade_outbox (
    seq        bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME trade_outbox_seq) PRIMARY KEY,
    trade_id   text NOT NULL,
    op         text NOT NULL CHECK (op IN ('add', 'update', 'delete')),
    fields     jsonb NOT NULL CHECK (jsonb_typeof(fields) = 'array'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The highest seq published so far (one row per stream): what a restart resumes after and what
-- nof0_outbox_pending counts from. A replay after a Redis loss republishes at or below it.
CREATE TABLE IF NOT EXISTS trade_outbox_published (
    stream     text PRIMARY KEY,
    seq        bigint NOT NULL DEFAULT 0 CHECK (seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO trade_outbox_published (stream) VALUES ('trades') ON CONFLICT DO NOTHING;
