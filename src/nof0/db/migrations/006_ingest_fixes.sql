-- 006_ingest_fixes: position versions, the dead letters' md5 of the whole line, and the origin of rows derived before a rollback of 003 (additive).
-- depends: 003_ingest

-- A position event's version (nof0.kernel.events.position_version): the time the state was observed
-- (default its entry time) and, between different states of one millisecond, the md5 of the state's
-- canonical JSON. A state replaces the stored one only when its version is greater. Rows written
-- before this migration have none and count as older than any version.
ALTER TABLE positions ADD COLUMN updated_ts_ms BIGINT;
ALTER TABLE positions ADD COLUMN version_md5 TEXT;

-- Dead letters keep only the start of a very long raw text; the md5 that makes a replayed bad line a
-- no-op must still be the whole line's, so the writer gives it (existing values stay as they are). A
-- writer that does not still gets md5(raw), as before.
ALTER TABLE ingest_dead_letters ALTER COLUMN raw_md5 DROP EXPRESSION;
CREATE FUNCTION ingest_dead_letters_raw_md5() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.raw_md5 := coalesce(NEW.raw_md5, md5(NEW.raw));
    RETURN NEW;
END;
$$;
CREATE TRIGGER trg_ingest_dead_letters_raw_md5 BEFORE INSERT ON ingest_dead_letters
    FOR EACH ROW EXECUTE FUNCTION ingest_dead_letters_raw_md5();

-- Rolling 003 back drops `origin` but keeps the rows and the fills ledger (001); applying 003 again
-- marks every row 'event', and the next fill would then fold a new ledger beside the old rows. Rows
-- whose id is the fill book's (uuid5 ids, nof0.trades.rows.derived_id) and whose executions are in
-- `fills` are the fill book's: give them back their origin (rows written since 003 already have it).
UPDATE trades t SET origin = 'fills'
 WHERE t.origin = 'event' AND t.entry_tid IS NOT NULL AND t.exit_tid IS NOT NULL
   AND length(t.id) >= 37 AND substr(right(t.id, 36), 15, 1) = '5'
   AND EXISTS (SELECT 1 FROM fills f WHERE f.model_id = t.model_id AND f.tid = t.entry_tid
                  AND f.symbol = t.symbol AND f.ts_ms = t.entry_ts_ms)
   AND EXISTS (SELECT 1 FROM fills f WHERE f.model_id = t.model_id AND f.tid = t.exit_tid
                  AND f.symbol = t.symbol AND f.ts_ms = t.exit_ts_ms AND f.price = t.exit_price);

UPDATE positions p SET origin = 'fills'
 WHERE p.origin = 'event' AND length(p.id) >= 37 AND substr(right(p.id, 36), 15, 1) = '5'
   AND p.metadata ? 'closed_pnl'
   AND EXISTS (SELECT 1 FROM fills f WHERE f.model_id = p.model_id AND f.symbol = p.symbol
                  AND f.ts_ms = p.entry_ts_ms AND f.oid IS NOT DISTINCT FROM p.entry_oid
                  AND f.side = CASE p.side WHEN 'long' THEN 'buy' ELSE 'sell' END);

-- The round trips of closed event positions (uuid5 ids, no tids) were written by position closes,
-- whose facts (position_closes, dropped with 003) are restored from the closed positions, so a later
-- version of such a position is closed again instead of reopened.
UPDATE trades t SET origin = 'position'
  FROM positions p
 WHERE t.origin = 'event' AND p.origin = 'event' AND p.status = 'closed'
   AND t.entry_tid IS NULL AND t.exit_tid IS NULL
   AND length(t.id) >= 37 AND substr(right(t.id, 36), 15, 1) = '5'
   AND t.model_id = p.model_id AND t.symbol = p.symbol AND t.side = p.side
   AND t.entry_ts_ms = p.entry_ts_ms AND t.exit_ts_ms = p.exit_ts_ms
   AND t.entry_price = p.entry_price AND t.exit_price = p.exit_price;

INSERT INTO position_closes (position_id, exit_price, exit_ts_ms, exit_oid, commission)
SELECT p.id, p.exit_price, p.exit_ts_ms, t.exit_oid, t.exit_commission_dollars
  FROM positions p
  LEFT JOIN LATERAL (
      SELECT exit_oid, exit_commission_dollars FROM trades t
       WHERE t.origin = 'position' AND t.model_id = p.model_id AND t.symbol = p.symbol
         AND t.entry_ts_ms = p.entry_ts_ms AND t.exit_ts_ms = p.exit_ts_ms
       ORDER BY t.id LIMIT 1
  ) t ON true
 WHERE p.origin = 'event' AND p.status = 'closed' AND p.exit_price > 0 AND p.exit_ts_ms > 0
ON CONFLICT (position_id) DO NOTHING;
