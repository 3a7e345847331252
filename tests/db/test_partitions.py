"""Monthly partitions of price_ticks and account_equity_snapshots (migration 010, design 2.5): existing
rows move into their months and back with the rollback, inserts never fail, the partitions job keeps
months ahead and empties the default partition, and the API's time-bounded reads prune months."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import psycopg

from nof0.api import repository as api_repo
from nof0.db import migrate as m
from nof0.ingest.service import IngestService
from nof0.jobs.partitions import PARTITIONS, partitions_job
from nof0.jobs.runner import run_recorded
from nof0.kernel.clock import FixedClock
from tests.db.test_migrations import all_migrations
from tests.ingest import factories as f


def ms(year: int, month: int, day: int = 1, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=timezone.utc).timestamp() * 1000)


def placement(conn: psycopg.Connection, table: str) -> dict[int, str]:
    """id -> the partition holding the row."""
    return dict(conn.execute(f"SELECT id, tableoid::regclass::text FROM {table}").fetchall())


def partitions(conn: psycopg.Connection, table: str) -> list[str]:
    return sorted(r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        (table,)))


def snapshot_of(conn: psycopg.Connection) -> dict[str, object]:
    return {
        "price_ticks": conn.execute("SELECT * FROM price_ticks ORDER BY id").fetchall(),
        "equity": conn.execute("SELECT * FROM account_equity_snapshots ORDER BY id").fetchall(),
        "leaderboard": conn.execute("SELECT * FROM v_leaderboard ORDER BY model_id").fetchall(),
        "since_inception": conn.execute("SELECT * FROM v_since_inception ORDER BY model_id").fetchall(),
        "next_tick_id": conn.execute("SELECT last_value FROM price_ticks_id_seq").fetchone(),
    }


def test_existing_rows_move_into_their_months_and_back(empty_dsn):
    everything = all_migrations()
    later = everything[everything.index("010_partitions"):]
    m.migrate(empty_dsn)
    assert m.rollback(empty_dsn, len(later)) == list(reversed(later))
    with psycopg.connect(empty_dsn) as conn:
        conn.execute("INSERT INTO models (id, display_name) VALUES ('m1', 'M1')")
        conn.cursor().executemany(
            "INSERT INTO price_ticks (symbol, price, ts_ms, source) VALUES (%s, %s, %s, 'hyperliquid')",
            [("BTC", 100.0 + i, ms(2025, 1 + i % 3, 10 + i)) for i in range(6)])
        conn.cursor().executemany(
            "INSERT INTO account_equity_snapshots (model_id, ts_ms, equity_usd) VALUES ('m1', %s, %s)",
            [(ms(2025, 1 + i % 3, 10 + i), 10_000.0 + i) for i in range(6)])
        conn.execute("SELECT refresh_views_nof0()")
        before = snapshot_of(conn)

    assert m.migrate(empty_dsn) == later
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'price_ticks'").fetchone() == ("p",)
        ticks = placement(conn, "price_ticks")
        assert set(ticks.values()) == {"price_ticks_p2025_01", "price_ticks_p2025_02", "price_ticks_p2025_03"}
        assert set(placement(conn, "account_equity_snapshots").values()) == {
            "account_equity_snapshots_p2025_01", "account_equity_snapshots_p2025_02",
            "account_equity_snapshots_p2025_03"}
        assert {"price_ticks_default", "account_equity_snapshots_default"} <= set(
            partitions(conn, "price_ticks") + partitions(conn, "account_equity_snapshots"))
        assert snapshot_of(conn) == before  # every row, the views and the id sequence as they were
        # the upserts' natural keys still hold across the partitions
        conn.execute("INSERT INTO price_ticks (symbol, price, ts_ms, source) VALUES ('BTC', 1, %s, 'hyperliquid')"
                     " ON CONFLICT DO NOTHING", (ms(2025, 1, 10),))
        conn.execute("INSERT INTO account_equity_snapshots (model_id, ts_ms, equity_usd) VALUES ('m1', %s, 1)"
                     " ON CONFLICT (model_id, ts_ms) DO UPDATE SET equity_usd = EXCLUDED.equity_usd",
                     (ms(2025, 1, 10),))
        after_upsert = snapshot_of(conn)
        assert after_upsert["price_ticks"] == before["price_ticks"]
        conn.commit()

    assert m.rollback(empty_dsn, len(later)) == list(reversed(later))
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute(
            "SELECT relname, relkind FROM pg_class WHERE relname IN ('price_ticks', 'account_equity_snapshots')"
            " ORDER BY relname").fetchall() == [("account_equity_snapshots", "r"), ("price_ticks", "r")]
        assert not conn.execute("SELECT 1 FROM pg_class WHERE relname LIKE 'price\\_ticks\\_p2%' OR relname = 'price_ticks_default'").fetchall()
        restored = snapshot_of(conn)
        assert {k: v for k, v in restored.items() if k != "leaderboard"} == {
            k: v for k, v in after_upsert.items() if k != "leaderboard"}
        keys = dict(conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid IN ('price_ticks'::regclass, 'account_equity_snapshots'::regclass) AND contype IN ('p', 'u')"
        ).fetchall())
        assert keys == {"price_ticks_pkey": "PRIMARY KEY (id)", "account_equity_snapshots_pkey": "PRIMARY KEY (id)",
                        "uq_equity_model_ts": "UNIQUE (model_id, ts_ms)"}
        conn.execute("SELECT refresh_views_nof0()")
    assert m.migrate(empty_dsn) == later


async def test_ingest_writes_ticks_and_snapshots_into_their_months(rt, pg_dsn):
    report = await IngestService(rt).ingest([
        f.model("m1"), f.symbol("BTC"),
        f.tick("BTC", 100.0),
        f.snapshot("m1", equity=10_100.0),
    ])
    assert report.ok, report.rejections
    with psycopg.connect(pg_dsn) as conn:
        # f.T0 is 2025-10-25, a month the template has no partition for: the default takes it
        assert set(placement(conn, "price_ticks").values()) == {"price_ticks_default"}
    rt.clock = FixedClock(f.T0)
    outcome = await run_recorded(rt, PARTITIONS, partitions_job)
    assert outcome.ok, outcome.error
    assert "price_ticks_p2025_10" in outcome.result["price_ticks"]["created"]
    with psycopg.connect(pg_dsn) as conn:
        assert set(placement(conn, "price_ticks").values()) == {"price_ticks_p2025_10"}
        assert set(placement(conn, "account_equity_snapshots").values()) == {"account_equity_snapshots_p2025_10"}
        assert not conn.execute("SELECT 1 FROM price_ticks_default").fetchall()
    # a replay of the same batch is still a no-op: the natural keys span the partitions
    again = await IngestService(rt).ingest([f.tick("BTC", 100.0), f.snapshot("m1", equity=10_100.0)])
    assert again.accepted == 0 and again.duplicates == 2


async def test_the_job_keeps_months_ahead(rt, pg_dsn):
    rt.clock = FixedClock(ms(2031, 11, 15))
    rt.config.root.jobs.partitions_ahead = 3
    outcome = await run_recorded(rt, PARTITIONS, partitions_job)
    assert outcome.ok, outcome.error
    assert outcome.result["price_ticks"]["created"] == [
        "price_ticks_p2031_11", "price_ticks_p2031_12", "price_ticks_p2032_01", "price_ticks_p2032_02"]
    with psycopg.connect(pg_dsn) as conn:
        bounds = dict(conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = 'price_ticks_p2032_01'"
        ).fetchall())
        assert bounds == {"price_ticks_p2032_01": f"FOR VALUES FROM ('{ms(2032, 1)}') TO ('{ms(2032, 2)}')"}
        opts = conn.execute("SELECT reloptions FROM pg_class WHERE relname = 'price_ticks_p2032_01'").fetchone()[0]
        assert "autovacuum_vacuum_scale_factor=0.02" in opts  # the tuning of 007, from the default partition
    again = await run_recorded(rt, PARTITIONS, partitions_job)
    assert again.result == {"price_ticks": {"created": []}, "account_equity_snapshots": {"created": []}}


def scans(plan: dict) -> dict[str, int]:
    """Partition scanned -> loops actually run (0: pruned at run time), over the whole plan tree."""
    out: dict[str, int] = {}

    def walk(node: dict) -> None:
        if "Relation Name" in node:
            out[node["Relation Name"]] = out.get(node["Relation Name"], 0) + node.get("Actual Loops", 0)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return out


class Explaining:
    """Runs the API repository's own statement under EXPLAIN ANALYZE: its rows are then the plan."""

    def __init__(self, conn) -> None:
        self.conn = conn

    async def execute(self, query, params=None):
        return await self.conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query, params)


async def test_account_totals_marks_read_only_the_months_up_to_each_time(rt, pg_dsn):
    """/api/account-totals marks positions at the last tick at or before each hourly record: the months
    after that time are pruned (never scanned), whatever their size."""
    months = [(2026, 1), (2026, 2), (2026, 3), (2026, 4)]
    with psycopg.connect(pg_dsn) as conn:
        for y, mo in months:
            conn.execute("SELECT nof0_ensure_month_partition('price_ticks', %s)", (ms(y, mo),))
        conn.cursor().executemany(
            "INSERT INTO price_ticks (symbol, price, ts_ms, source) VALUES ('BTC', %s, %s, 'hyperliquid')",
            [(100.0 + d, ms(y, mo, 1 + d)) for y, mo in months for d in range(20)])
        conn.execute("INSERT INTO positions (id, model_id, symbol, side, entry_price, quantity, entry_ts_ms)"
                     " VALUES ('p1', 'm1', 'BTC', 'long', 100, 1, %s)", (ms(2026, 1, 2),))
        conn.execute("ANALYZE price_ticks")
    asked = [ms(2026, 2, 5), ms(2026, 2, 6, 12)]
    async with rt.pool.connection() as conn:
        rows = await api_repo.list_positions_at(Explaining(conn), ["m1", "m1"], asked)
        result = await api_repo.list_positions_at(conn, ["m1", "m1"], asked)
    plan = rows[0]["QUERY PLAN"][0]
    loops = scans(plan)
    assert loops["price_ticks_p2026_03"] == 0 and loops["price_ticks_p2026_04"] == 0, json.dumps(loops)
    assert all(loops[p] == 0 for p in loops if p.startswith("price_ticks_p2026_1") or p.startswith("price_ticks_p2027"))
    assert loops["price_ticks_p2026_02"] > 0
    # and the answer is the one the unpartitioned table gave: the last tick at or before each time
    assert [r["mark_price"] for r in result] == [104.0, 105.0]


async def test_a_time_window_on_equity_reads_its_months_only(rt, pg_dsn):
    """Any read bounded in time (here the last day's equity) is planned against its month alone."""
    with psycopg.connect(pg_dsn) as conn:
        for mo in (1, 2, 3):
            conn.execute("SELECT nof0_ensure_month_partition('account_equity_snapshots', %s)", (ms(2026, mo),))
        conn.cursor().executemany(
            "INSERT INTO account_equity_snapshots (model_id, ts_ms, equity_usd) VALUES ('m1', %s, %s)",
            [(ms(2026, mo, 1 + d), 10_000.0 + d) for mo in (1, 2, 3) for d in range(20)])
        plan = conn.execute(
            "EXPLAIN (FORMAT JSON) SELECT * FROM account_equity_snapshots WHERE model_id = 'm1'"
            " AND ts_ms >= %s AND ts_ms < %s", (ms(2026, 2, 10), ms(2026, 2, 11))).fetchone()[0][0]
    assert set(scans(plan)) == {"account_equity_snapshots_p2026_02"}


async def test_table_growth_counts_every_partition(rt, pg_dsn):
    from nof0.obs.exposition import render_metrics

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for mo in (1, 2):
            conn.execute("SELECT nof0_ensure_month_partition('price_ticks', %s)", (ms(2026, mo),))
        conn.cursor().executemany(
            "INSERT INTO price_ticks (symbol, price, ts_ms, source) VALUES ('BTC', %s, %s, 'x')",
            [(100.0 + d, ms(2026, 1 + d % 2, 1 + d)) for d in range(20)])
        conn.execute("ANALYZE price_ticks")
    text = (await render_metrics(rt)).decode()
    assert 'nof0_table_rows{table="price_ticks"} 20.0' in text
    assert "price_ticks_p2026_01" not in text  # partitions count in their table, not on their own
