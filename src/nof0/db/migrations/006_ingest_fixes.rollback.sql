-- Rollback of 006_ingest_fixes (the restored origins and closes are facts and stay).
ALTER TABLE positions DROP COLUMN IF EXISTS version_md5;
ALTER TABLE positions DROP COLUMN IF EXISTS updated_ts_ms;
-- raw_md5 becomes md5(raw) again; two capped texts that are now equal keep one dead letter
DROP TRIGGER IF EXISTS trg_ingest_dead_letters_raw_md5 ON ingest_dead_letters;
DROP FUNCTION IF EXISTS ingest_dead_letters_raw_md5();
ALTER TABLE ingest_dead_letters DROP CONSTRAINT uq_dead_letters_raw;
ALTER TABLE ingest_dead_letters DROP COLUMN raw_md5;
ALTER TABLE ingest_dead_letters ADD COLUMN raw_md5 TEXT GENERATED ALWAYS AS (md5(raw)) STORED;
DELETE FROM ingest_dead_letters a USING ingest_dead_letters b WHERE a.raw_md5 = b.raw_md5 AND a.id > b.id;
ALTER TABLE ingest_dead_letters ADD CONSTRAINT uq_dead_letters_raw UNIQUE (raw_md5);
