"""The retention job (design 2.5): old price ticks and decision cycles go to gzip'd CSV files, then
leave their tables (whole monthly partitions for the ticks, batches of rows for the cycles); recent
rows, price_latest and anything not archived stay."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from nof0.cli import main
from nof0.kernel.clock import FixedClock
from nof0.jobs.retention import RETENTION
from nof0.jobs.runner import run_recorded
from nof0.jobs.scheduler import Scheduler
from nof0.jobs.tasks import retention_job
from tests.analytics.test_commands import cli_config  # noqa: F401  (fixture)

DAY = 86_400_000
T0 = 1_760_000_000_000


@pytest.fixture
def clock(rt) -> FixedClock:
    rt.clock = FixedClock(T0)
    return rt.clock


@pytest.fixture
def archive(rt, tmp_path) -> Path:
    d = tmp_path / "cold"
    rt.config.root.jobs.retention.archive_dir = str(d)
    rt.config.root.jobs.retention.decision_cycles_days = 90  # opt in (the shipped default keeps them)
    return d


def seed(dsn: str) -> dict[str, list[tuple]]:
    """Ticks and cycles on both sides of the cutoffs (30 and 90 days), ids not in time order:
    late-arriving old rows get higher ids than recent ones."""
    ticks = [("BTC", 60_000.5 + i, T0 - (40 - i) * DAY, "hyperliquid") for i in range(5)]  # old
    ticks += [("ETH", 3_000.25, T0 - DAY, "hyperliquid"), ("BTC", 61_000.0, T0 - 29 * DAY, "nof1")]  # recent
    ticks += [("ETH", 2_900.0, T0 - 31 * DAY, "hyperliquid"), ("SOL", 150.0, T0 - 365 * DAY, None)]  # old, late
    cycles = [
        ("m1", 1, "d1", 'thinks "hard",\nthen, acts', {"BTC": {"signal": "hold"}}, True, None, T0 - 100 * DAY),
        ("m1", 2, None, None, None, False, "timeout", T0 - 91 * DAY),
        ("m2", 1, "d2", "recent", {"ETH": {"signal": "buy_to_enter"}}, True, None, T0 - 89 * DAY),
        ("m2", 2, "d3", "ünïcode ✓", [], True, None, T0 - 95 * DAY),
    ]
    with psycopg.connect(dsn) as conn:
        conn.cursor().executemany(
            "INSERT INTO price_ticks (symbol, price, ts_ms, source) VALUES (%s, %s, %s, %s)", ticks)
        conn.cursor().executemany(
            """INSERT INTO decision_cycles (model_id, cycle_number, prompt_digest, cot_trace, decisions, success,
                                            error_message, executed_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, to_timestamp(%s / 1000.0))""",
            [(*c[:4], None if c[4] is None else json.dumps(c[4]), *c[5:]) for c in cycles])
        conn.execute("INSERT INTO price_latest (symbol, price, ts_ms) VALUES ('SOL', 150.0, %s)", (T0 - 365 * DAY,))
    return table_rows(dsn)


def table_rows(dsn: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as conn:
        return {
            "price_ticks": conn.execute(
                "SELECT id, symbol, price, ts_ms, source, ingested_at FROM price_ticks ORDER BY id").fetchall(),
            "decision_cycles": conn.execute(
                """SELECT id, model_id, cycle_number, prompt_digest, cot_trace, decisions, success, error_message,
                          executed_at FROM decision_cycles ORDER BY id""").fetchall(),
            "price_latest": conn.execute("SELECT * FROM price_latest").fetchall(),
        }


def month_end_ms(ts_ms: int) -> int:
    """The first millisecond after the UTC month holding ts_ms."""
    t = datetime.fromtimestamp(ts_ms / 1000, timezone.utc)
    nxt = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=timezone.utc)
    return int(nxt.timestamp() * 1000)


def old(rows: dict[str, list[tuple]]) -> dict[str, set[int]]:
    """What retention archives: ticks whose whole month is older than 30 days, cycles older than 90."""
    return {
        "price_ticks": {r[0] for r in rows["price_ticks"] if month_end_ms(r[3]) <= T0 - 30 * DAY},
        "decision_cycles": {r[0] for r in rows["decision_cycles"] if r[8].timestamp() * 1000 < T0 - 90 * DAY},
    }


def partitions(dsn: str, table: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            (table,))}


def read_archive(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def archived_files(archive: Path, table: str) -> list[Path]:
    return sorted((archive / table).glob("*.csv.gz"))


def job_run(dsn: str) -> tuple:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT last_status, last_error, runs, failures FROM job_runs WHERE job = 'retention'").fetchone()


async def test_old_rows_are_archived_then_deleted_and_recent_rows_kept(rt, clock, archive, pg_dsn):
    before = seed(pg_dsn)
    expected_old = old(before)
    # ticks of 2024-10 and 2025-08 go; those of 2025-09 stay (the month ends after the cutoff, 2025-09-09)
    assert len(expected_old["price_ticks"]) == 3 and len(expected_old["decision_cycles"]) == 3

    outcome = await run_recorded(rt, RETENTION, retention_job)
    assert outcome.ok, outcome.error
    after = table_rows(pg_dsn)
    for table in ("price_ticks", "decision_cycles"):
        kept = {r[0] for r in after[table]}
        assert kept == {r[0] for r in before[table]} - expected_old[table]
        # every archived row, as it was, and nothing else
        files = archived_files(archive, table)
        assert [str(f) for f in files] == sorted(outcome.result["tables"][0 if table == "price_ticks" else 1]["files"])
        rows = [row for f in files for row in read_archive(f)]
        assert sorted(int(r["id"]) for r in rows) == sorted(expected_old[table])
        by_id = {r[0]: r for r in before[table]}
        for r in rows:
            orig = by_id[int(r["id"])]
            if table == "price_ticks":
                assert (r["symbol"], float(r["price"]), int(r["ts_ms"]), r["source"] or None) == orig[1:5]
            else:
                assert (r["model_id"], int(r["cycle_number"]), r["prompt_digest"] or None, r["cot_trace"] or None,
                        json.loads(r["decisions"]) if r["decisions"] else None, r["success"] == "t",
                        r["error_message"] or None) == orig[1:8]
    assert after["price_latest"] == before["price_latest"]  # SOL's only tick went, its latest price stays
    assert [t["status"] for t in outcome.result["tables"]] == ["done", "done", "disabled"]
    assert outcome.result["tables"][0]["rows"] == 3 and outcome.result["tables"][1]["rows"] == 3
    assert [f.name for f in archived_files(archive, "price_ticks")] == [
        "price_ticks_p2024_10.csv.gz", "price_ticks_p2025_08.csv.gz"]  # one file per month
    assert rt.metrics.registry.get_sample_value(
        "nof0_retention_archived_rows_total", {"table": "price_ticks"}) == 3
    # whole months went: their partitions are gone, nothing was deleted row by row
    assert not {"price_ticks_p2024_10", "price_ticks_p2025_08"} & partitions(pg_dsn, "price_ticks")
    assert "price_ticks_p2025_09" in partitions(pg_dsn, "price_ticks")
    assert job_run(pg_dsn) == ("ok", None, 1, 0)

    files = {p: p.read_bytes() for p in archive.rglob("*") if p.is_file()}
    again = await run_recorded(rt, RETENTION, retention_job)
    assert again.ok and [t["rows"] for t in again.result["tables"]] == [0, 0, 0]
    assert table_rows(pg_dsn) == after and {p: p.read_bytes() for p in archive.rglob("*") if p.is_file()} == files
    assert not list(archive.rglob(".*.tmp"))


async def test_archives_restore_with_copy_from(rt, clock, archive, pg_dsn):
    before = seed(pg_dsn)
    assert (await run_recorded(rt, RETENTION, retention_job)).ok
    # the runbook's procedure: COPY into a staging copy of the table, then insert what is missing
    with psycopg.connect(pg_dsn) as conn:
        for table in ("price_ticks", "decision_cycles"):
            cols = "id, symbol, price, ts_ms, source, ingested_at" if table == "price_ticks" else (
                "id, model_id, cycle_number, prompt_digest, cot_trace, decisions, success, error_message, executed_at")
            conn.execute(f"CREATE TEMP TABLE restore_{table} (LIKE {table} INCLUDING DEFAULTS)")
            for f in archived_files(archive, table):
                with conn.cursor().copy(f"COPY restore_{table} ({cols}) FROM STDIN (FORMAT csv, HEADER true)") as cp:
                    cp.write(gzip.decompress(f.read_bytes()))
            conn.execute(f"INSERT INTO {table} SELECT * FROM restore_{table} ON CONFLICT DO NOTHING")
    assert table_rows(pg_dsn) == before


async def test_batches_smaller_than_the_backlog(rt, clock, archive, pg_dsn):
    before = seed(pg_dsn)
    settings = rt.config.root.jobs.retention
    settings.batch_rows, settings.max_batches_per_run = 2, 1
    first = await run_recorded(rt, RETENTION, retention_job)
    assert first.ok
    ticks = first.result["tables"][0]
    assert (ticks["status"], ticks["rows"], len(ticks["files"])) == ("backlog", 1, 1)  # the oldest month
    cycles = first.result["tables"][1]
    assert (cycles["status"], cycles["rows"], len(cycles["files"])) == ("backlog", 2, 1)

    second = await run_recorded(rt, RETENTION, retention_job)
    assert [(t["status"], t["rows"]) for t in second.result["tables"][:2]] == [("done", 2), ("done", 1)]
    for table in ("price_ticks", "decision_cycles"):
        ids = [int(r["id"]) for f in archived_files(archive, table) for r in read_archive(f)]
        assert sorted(ids) == sorted(old(before)[table])  # each row in exactly one file
    assert all(len(read_archive(f)) <= 2 for f in archived_files(archive, "decision_cycles"))
    assert {r[0] for r in table_rows(pg_dsn)["price_ticks"]} == {r[0] for r in before["price_ticks"]} - old(before)[
        "price_ticks"]


async def test_zero_days_keeps_a_table(rt, clock, archive, pg_dsn):
    before = seed(pg_dsn)
    rt.config.root.jobs.retention.price_ticks_days = 0
    outcome = await run_recorded(rt, RETENTION, retention_job)
    assert [(t["table"], t["status"], t["rows"]) for t in outcome.result["tables"]] == [
        ("price_ticks", "disabled", 0), ("decision_cycles", "done", 3), ("account_equity_snapshots", "disabled", 0)]
    assert table_rows(pg_dsn)["price_ticks"] == before["price_ticks"]
    assert not (archive / "price_ticks").exists()


async def test_an_archive_that_cannot_be_written_deletes_nothing(rt, clock, tmp_path, pg_dsn):
    before = seed(pg_dsn)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the archive folder should be")
    rt.config.root.jobs.retention.archive_dir = str(blocker / "archive")
    outcome = await Scheduler(rt).run_now(RETENTION)  # as the scheduler runs it
    assert not outcome.ok and outcome.error.startswith("RetentionFailed: price_ticks: NotADirectoryError")
    assert table_rows(pg_dsn) == before
    status, error, runs, failures = job_run(pg_dsn)
    assert (status, runs, failures) == ("failed", 1, 1) and "NotADirectoryError" in error
    assert rt.metrics.registry.get_sample_value("nof0_job_failures_total", {"job": RETENTION}) == 1
    # the table lock went with the failed run: the next run (with a writable folder) archives
    rt.config.root.jobs.retention.archive_dir = str(tmp_path / "ok")
    assert (await run_recorded(rt, RETENTION, retention_job)).ok
    assert len(table_rows(pg_dsn)["price_ticks"]) == len(before["price_ticks"]) - len(old(before)["price_ticks"])


async def test_a_table_another_process_archives_is_skipped(rt, clock, archive, pg_dsn):
    before = seed(pg_dsn)
    with psycopg.connect(pg_dsn) as other:
        other.execute("SELECT pg_advisory_lock(hashtext('nof0.retention.price_ticks'))")
        outcome = await run_recorded(rt, RETENTION, retention_job)
    assert [(t["status"], t["rows"]) for t in outcome.result["tables"]] == [("locked", 0), ("done", 3), ("disabled", 0)]
    assert table_rows(pg_dsn)["price_ticks"] == before["price_ticks"]


async def test_the_scheduler_runs_retention_on_its_cadence(rt, clock):
    s = Scheduler(rt)
    assert s.due()[RETENTION] == T0 + 3_600_000  # jobs.retention_every, not at start-up
    rt.config.root.jobs.retention.enabled = False
    assert RETENTION not in Scheduler(rt).jobs


def test_retention_command(cli_config, pg_dsn, tmp_path, capsys, monkeypatch):  # noqa: F811
    seed(pg_dsn)
    monkeypatch.setenv("NOF0_ARCHIVE_DIR", str(tmp_path / "cold"))
    assert main(["--config", cli_config, "retention"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("retention done in ")
    assert "price_ticks: done, older than 30 days; " in out  # the real clock: every seeded row is old
    assert list((tmp_path / "cold" / "price_ticks").glob("price_ticks_p*.csv.gz"))
    assert main(["--config", cli_config, "jobs"]) == 0
    assert "retention: ok," in capsys.readouterr().out


def test_migration_tunes_autovacuum(pg_dsn):
    """Plain tables carry the tuning; partitioned ones on every partition (a partitioned table has no storage)."""
    with psycopg.connect(pg_dsn) as conn:
        opts = dict(conn.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relkind = 'r' AND (relname IN ('trades', 'fills')"
            " OR relname LIKE 'price\\_ticks\\_%' OR relname LIKE 'account\\_equity\\_snapshots\\_%')").fetchall())
    assert {"trades", "fills", "price_ticks_default", "account_equity_snapshots_default"} <= set(opts)
    assert any(name.startswith("price_ticks_p") for name in opts)
    assert all(any(o.startswith("autovacuum_vacuum_scale_factor=") for o in v) for v in opts.values()), opts


async def test_old_equity_months_go_when_configured(rt, clock, archive, pg_dsn):
    with psycopg.connect(pg_dsn) as conn:
        conn.cursor().executemany(
            "INSERT INTO account_equity_snapshots (model_id, ts_ms, equity_usd) VALUES ('m1', %s, %s)",
            [(T0 - 400 * DAY, 10_000.0), (T0 - 200 * DAY, 10_500.0), (T0 - 2 * DAY, 11_000.0)])
    outcome = await run_recorded(rt, RETENTION, retention_job)
    assert outcome.result["tables"][2]["status"] == "disabled"  # the default keeps the equity history
    rt.config.root.jobs.retention.account_equity_snapshots_days = 180
    outcome = await run_recorded(rt, RETENTION, retention_job)
    assert outcome.ok, outcome.error
    equity = outcome.result["tables"][2]
    assert (equity["table"], equity["status"], equity["rows"]) == ("account_equity_snapshots", "done", 2)
    rows = [row for f in archived_files(archive, "account_equity_snapshots") for row in read_archive(f)]
    assert sorted(float(r["equity_usd"]) for r in rows) == [10_000.0, 10_500.0]
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT ts_ms FROM account_equity_snapshots").fetchall() == [(T0 - 2 * DAY,)]
