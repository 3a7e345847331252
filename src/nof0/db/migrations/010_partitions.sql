-- 010_partitions: monthly range partitions of price_ticks and account_equity_snapshots (design 2.5), existing rows moved in.
-- depends: 007_maintenance

-- Both tables are range-partitioned on ts_ms (epoch milliseconds), one partition per UTC month named
-- <table>_pYYYY_MM, plus <table>_default, which takes any row no month partition covers yet, so an
-- insert never fails. The partitions job (nof0.jobs.partitions) creates the coming months ahead and
-- moves rows that landed in the default partition into their month; retention archives and drops
-- whole months (nof0.jobs.retention).
--
-- A partitioned table's primary key and unique constraints must contain the partition key: the
-- primary key becomes (id, ts_ms) (id still comes from the same sequence); the natural keys the
-- upserts use, (symbol, ts_ms, source) and (model_id, ts_ms), contain it already. Storage parameters
-- (the autovacuum tuning of 007) live on the leaf partitions: a partitioned table has no storage.

-- The UTC month holding ts_ms: its bounds in epoch milliseconds and its label (YYYY_MM).
CREATE FUNCTION nof0_month_bounds(ts_ms bigint, OUT lo bigint, OUT hi bigint, OUT label text)
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (extract(epoch FROM m AT TIME ZONE 'UTC') * 1000)::bigint,
           (extract(epoch FROM (m + interval '1 month') AT TIME ZONE 'UTC') * 1000)::bigint,
           to_char(m, 'YYYY_MM')
      FROM (SELECT date_trunc('month', to_timestamp(ts_ms / 1000.0) AT TIME ZONE 'UTC') AS m) s
$$;

-- Create the month partition of `parent` holding at_ms, unless it exists; returns its name, or null
-- when it existed. Rows of that month waiting in the default partition move into it. The new
-- partition copies the default partition's storage parameters. Creators of one parent's partitions
-- (and retention, which drops them) queue on one advisory lock; the default partition is locked
-- for the move, so an insert routed to it waits instead of slipping a row in between.
CREATE FUNCTION nof0_ensure_month_partition(parent text, at_ms bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    b record;
    part text;
    dflt text := parent || '_default';
    opts text;
BEGIN
    SELECT * INTO b FROM nof0_month_bounds(at_ms);
    part := parent || '_p' || b.label;
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('nof0.partitions.' || parent));
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN  -- made while we waited
        RETURN NULL;
    END IF;
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', dflt);
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                   part, parent);
    SELECT array_to_string(c.reloptions, ', ') INTO opts FROM pg_class c WHERE c.oid = to_regclass(quote_ident(dflt));
    IF opts IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %I SET (%s)', part, opts);
    END IF;
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE ts_ms >= %s AND ts_ms < %s RETURNING *) '
                   'INSERT INTO %I SELECT * FROM moved', dflt, b.lo, b.hi, part);
    -- a constraint proving the bounds spares ATTACH a scan of the new partition
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (ts_ms >= %s AND ts_ms < %s)',
                   part, part || '_bounds', b.lo, b.hi);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', parent, part, b.lo, b.hi);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_bounds');
    RETURN part;
END;
$$;

-- Rebuild `tbl` as a partitioned table (partitioned true) or as a plain one (false), rows, sequence,
-- constraints, indexes, storage parameters and dependent views included. Whatever columns, checks and
-- indexes the table has when this runs are carried over (later migrations may add some); only the
-- primary key changes: (id, ts_ms) when partitioned, (id) when plain. Views reading the table are
-- recreated from their own definitions (materialized ones filled again, with their indexes).
CREATE FUNCTION nof0_rebuild_table(tbl text, partitioned boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    old text := tbl || '_rebuilt_from';
    seq text := pg_get_serial_sequence(tbl, 'id');
    opts text;
    index_defs text[];
    unique_defs text[];
    views record;
    item jsonb;
    saved jsonb := '[]'::jsonb;  -- dependent views in creation order
    def text;
    m bigint;
BEGIN
    -- what must come back: dependent views (with their indexes), indexes, unique constraints, storage
    FOR views IN
        SELECT DISTINCT v.oid, v.relname, v.relkind
          FROM pg_depend d
          JOIN pg_rewrite r ON r.oid = d.objid
          JOIN pg_class v ON v.oid = r.ev_class
         WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = tbl::regclass AND v.oid <> tbl::regclass
         ORDER BY v.oid
    LOOP
        saved := saved || jsonb_build_object(
            'name', views.relname, 'kind', views.relkind, 'def', pg_get_viewdef(views.oid),
            'indexes', coalesce((SELECT jsonb_agg(pg_get_indexdef(x.indexrelid) ORDER BY x.indexrelid)
                                   FROM pg_index x WHERE x.indrelid = views.oid), '[]'::jsonb));
    END LOOP;
    FOR item IN SELECT value FROM jsonb_array_elements(saved) WITH ORDINALITY AS t(value, n) ORDER BY n DESC LOOP
        EXECUTE format(CASE WHEN item->>'kind' = 'm' THEN 'DROP MATERIALIZED VIEW %I' ELSE 'DROP VIEW %I' END,
                       item->>'name');
    END LOOP;
    SELECT array_agg(replace(pg_get_indexdef(x.indexrelid), ' ON ONLY ', ' ON ') ORDER BY x.indexrelid) INTO index_defs
      FROM pg_index x
     WHERE x.indrelid = tbl::regclass
       AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid);
    SELECT array_agg(format('ALTER TABLE %I ADD CONSTRAINT %I %s', tbl, c.conname, pg_get_constraintdef(c.oid))
                     ORDER BY c.oid) INTO unique_defs
      FROM pg_constraint c WHERE c.conrelid = tbl::regclass AND c.contype = 'u';
    SELECT array_to_string(c.reloptions, ', ') INTO opts
      FROM pg_class c
     WHERE c.oid = CASE WHEN partitioned THEN tbl::regclass ELSE to_regclass(quote_ident(tbl || '_default')) END;

    -- the new table beside the old one, the sequence handed over
    EXECUTE format('ALTER SEQUENCE %s OWNED BY NONE', seq);
    EXECUTE format('ALTER TABLE %I RENAME TO %I', tbl, old);
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)%s',
                   tbl, old, CASE WHEN partitioned THEN ' PARTITION BY RANGE (ts_ms)' ELSE '' END);
    EXECUTE format('ALTER SEQUENCE %s OWNED BY %I.id', seq, tbl);
    IF partitioned THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', tbl || '_default', tbl);
        IF opts IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I SET (%s)', tbl || '_default', opts);
        END IF;
        -- a partition for every month with rows, and for this month and the next
        FOR m IN EXECUTE format('SELECT DISTINCT (nof0_month_bounds(ts_ms)).lo FROM %I', old) LOOP
            PERFORM nof0_ensure_month_partition(tbl, m);
        END LOOP;
        PERFORM nof0_ensure_month_partition(tbl, (extract(epoch FROM now()) * 1000)::bigint);
        PERFORM nof0_ensure_month_partition(tbl, (extract(epoch FROM now() + interval '1 month') * 1000)::bigint);
    ELSIF opts IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %I SET (%s)', tbl, opts);
    END IF;
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', tbl, old);
    EXECUTE format('DROP TABLE %I', old);  -- frees the names of its indexes and constraints

    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (%s)', tbl, tbl || '_pkey',
                   CASE WHEN partitioned THEN 'id, ts_ms' ELSE 'id' END);
    FOREACH def IN ARRAY coalesce(unique_defs, '{}') LOOP
        EXECUTE def;
    END LOOP;
    FOREACH def IN ARRAY coalesce(index_defs, '{}') LOOP
        EXECUTE def;
    END LOOP;
    FOR item IN SELECT value FROM jsonb_array_elements(saved) WITH ORDINALITY AS t(value, n) ORDER BY n LOOP
        EXECUTE format(CASE WHEN item->>'kind' = 'm' THEN 'CREATE MATERIALIZED VIEW %I AS %s'
                            ELSE 'CREATE VIEW %I AS %s' END, item->>'name', item->>'def');
        FOR def IN SELECT jsonb_array_elements_text(item->'indexes') LOOP
            EXECUTE def;
        END LOOP;
    END LOOP;
    EXECUTE format('ANALYZE %I', tbl);
END;
$$;

DO $$
BEGIN
    PERFORM nof0_rebuild_table('price_ticks', true);
    PERFORM nof0_rebuild_table('account_equity_snapshots', true);
END;
$$;
