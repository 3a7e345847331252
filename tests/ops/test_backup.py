"""``nof0 backup`` / ``nof0 restore`` (design 2.5): a dump restored into an empty database gives the same
tables, row for row; the server's own pg_dump version is used or the command says which one is missing;
a restore refuses a database that is not empty and rebuilds the caches."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import psycopg
import pytest

from nof0.cli import main
from nof0.db.backup import PgToolError, find_pg_tool, server_major
from nof0.cache.keys import Keyspace
from tests.analytics.test_commands import cli_config  # noqa: F401  (fixture)
from tests.ops.arena import MODELS, seed_arena


def every_table(dsn: str) -> dict[str, list[str]]:
    """Every relation with rows (tables, partitions, materialized views, the migrations ledger) -> its rows as
    text, sorted; and every sequence's position."""
    with psycopg.connect(dsn) as conn:
        rels = conn.execute(
            """
            SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm', 'S') ORDER BY c.relname
            """
        ).fetchall()
        out: dict[str, list[str]] = {}
        for name, kind in rels:
            if kind == "S":
                out[name] = [str(conn.execute(f'SELECT last_value, is_called FROM "{name}"').fetchone())]
            else:
                out[name] = sorted(r[0] for r in conn.execute(f'SELECT t::text FROM "{name}" t').fetchall())
    return out


def test_a_backup_restored_into_an_empty_database_gives_identical_tables(
        config, pg_dsn, empty_dsn, cli_config, tmp_path, capsys, redis_sync, monkeypatch):  # noqa: F811
    seed_arena(config)
    keys = Keyspace(config.ttl, prefix=config.root.redis.prefix)
    source = every_table(pg_dsn)
    assert all(source[t] for t in ("models", "trades", "price_ticks_default", "account_equity_snapshots_default",
                                   "conversation_messages", "v_leaderboard", "model_analytics", "_yoyo_migration"))

    dump = tmp_path / "nof0.dump"
    capsys.readouterr()
    assert main(["--config", cli_config, "backup", str(dump)]) == 0
    out = capsys.readouterr().out
    major = server_major(pg_dsn)
    assert out.startswith(f"backup written: {dump} (") and f"pg_dump {major} at " in out
    assert dump.stat().st_size > 0 and not list(tmp_path.glob(".nof0.dump*"))

    redis_sync.set(keys.positions("gone-model").name, "from the database before")  # a key of another past
    monkeypatch.setenv("NOF0_POSTGRES_DSN", empty_dsn)
    assert main(["--config", cli_config, "restore", str(dump)]) == 0
    out = capsys.readouterr().out
    assert "migrations applied after it: none" in out and "rebuilt in" in out and "(ok)" in out
    assert every_table(empty_dsn) == source  # every table, partition, view and sequence, row for row

    # the caches describe the restored rows, and only them
    assert not redis_sync.exists(keys.positions("gone-model").name)
    assert sorted(json.loads(redis_sync.get(keys.crypto_prices().name))) == ["BTC", "ETH"]
    for m in MODELS:
        assert redis_sync.exists(keys.positions(m).name) and redis_sync.exists(keys.analytics(m).name)
    assert redis_sync.exists(keys.cache_sentinel().name)

    # a second restore into the now full database is refused, and changes nothing
    assert main(["--config", cli_config, "restore", str(dump)]) == 1
    err = capsys.readouterr().err
    assert "nof0 restore: the target database is not empty (" in err and "public.accounts" in err
    assert every_table(empty_dsn) == source


def test_the_servers_own_major_version_or_a_clear_message(pg_dsn, tmp_path):
    major = server_major(pg_dsn)
    assert find_pg_tool("pg_dump", major, embedded=False).major == major
    # a folder given with --pg-bin holding another version is passed over, and the message names it
    fake = tmp_path / "bin" / "pg_dump"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    assert find_pg_tool("pg_dump", major, embedded=False, pg_bin=str(fake.parent)).path != fake
    with pytest.raises(PgToolError) as exc:
        find_pg_tool("pg_dump", 99, embedded=False, pg_bin=str(fake.parent))
    msg = str(exc.value)
    assert msg.startswith("no pg_dump of PostgreSQL 99 (the server's version) found; tried: ")
    assert f"{fake} (PostgreSQL 9)" in msg and "/usr/lib/postgresql/99/bin/pg_dump (absent)" in msg
    assert "postgresql-client-99" in msg and "--pg-bin" in msg


def test_backup_without_a_matching_pg_dump_fails_plainly(cli_config, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump on PATH...
    monkeypatch.setattr("nof0.db.backup._pgserver_bin", lambda: None)  # ...nor bundled
    monkeypatch.setattr("nof0.db.backup.server_major", lambda dsn: 98)  # a server no client here matches
    assert main(["--config", cli_config, "backup", str(tmp_path / "x.dump")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nof0 backup: no pg_dump of PostgreSQL 98 (the server's version) found")
    assert not (tmp_path / "x.dump").exists()


def test_restore_of_a_missing_file_names_it(cli_config, empty_dsn, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("NOF0_POSTGRES_DSN", empty_dsn)
    assert main(["--config", cli_config, "restore", str(tmp_path / "none.dump")]) == 1
    assert f"nof0 restore: {tmp_path / 'none.dump'}: no such backup file" in capsys.readouterr().err


def test_the_password_never_reaches_the_command_line(monkeypatch, tmp_path):
    from nof0.db import backup

    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"], seen["env"] = cmd, kw["env"]
        raise OSError("stop here")

    monkeypatch.setattr(backup.subprocess, "run", fake_run)
    tool = backup.PgTool(Path("/usr/bin/pg_dump"), 15)
    with pytest.raises(OSError):
        backup._run(tool, ["--format=custom"], "postgresql://nof0:s3cret@db.example:5432/nof0", "pg_dump")
    assert "s3cret" not in " ".join(seen["cmd"]) and seen["env"]["PGPASSWORD"] == "s3cret"
    assert os.environ.get("PGPASSWORD") != "s3cret"


def test_the_embedded_server_is_dumped_and_restored_with_its_own_binaries(cli_config, capsys, monkeypatch):  # noqa: F811
    import shutil
    import tempfile

    from nof0.db.backup import _pgserver_bin

    dirs = [Path(tempfile.mkdtemp(prefix="nof0b-", dir="/tmp")) for _ in range(2)]
    try:
        monkeypatch.delenv("NOF0_POSTGRES_DSN")
        monkeypatch.setenv("NOF0_DATA_DIR", str(dirs[0]))
        assert main(["--config", cli_config, "migrate"]) == 0
        from nof0.config import load_config
        from nof0.runtime import resolve_servers

        servers = resolve_servers(load_config(cli_config))
        try:
            with psycopg.connect(servers.postgres_dsn, autocommit=True) as conn:
                conn.execute("INSERT INTO models (id, display_name) VALUES ('m1', 'M1')")
                conn.execute("INSERT INTO price_ticks (symbol, price, ts_ms) VALUES ('BTC', 1.5, 1)")
                conn.execute("SELECT refresh_views_nof0()")  # as the restore's cache rebuild leaves them
            source = every_table(servers.postgres_dsn)
        finally:
            servers.stop()
        capsys.readouterr()
        dump = dirs[0] / "nof0.dump"
        assert main(["--config", cli_config, "backup", str(dump)]) == 0
        assert f"at {_pgserver_bin() / 'pg_dump'})" in capsys.readouterr().out  # pgserver's, not the machine's

        monkeypatch.setenv("NOF0_DATA_DIR", str(dirs[1]))  # a new embedded cluster: its database is empty
        assert main(["--config", cli_config, "restore", str(dump)]) == 0
        servers = resolve_servers(load_config(cli_config))
        try:
            assert every_table(servers.postgres_dsn) == source
        finally:
            servers.stop()
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
