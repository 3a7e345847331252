-- Rollback of 010_partitions: both tables become plain tables again, every row kept (whatever month
-- or default partition it was in), with their primary key (id), indexes, storage parameters and views.
DO $$
BEGIN
    PERFORM nof0_rebuild_table('account_equity_snapshots', false);
    PERFORM nof0_rebuild_table('price_ticks', false);
END;
$$;
DROP FUNCTION nof0_rebuild_table(text, boolean);
DROP FUNCTION nof0_ensure_month_partition(text, bigint);
DROP FUNCTION nof0_month_bounds(bigint);
