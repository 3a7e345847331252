"""The embedded path: from an empty data directory to migrated, reusable, cleanly stopped servers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
import redis

from nof0.config import load_config
from nof0.db.migrate import migrate, status
from nof0.embedded import EmbeddedError, EmbeddedPostgres
from nof0.runtime import resolve_servers
from tests.conftest import ETC, REPO


@pytest.fixture
def data_dir():
    d = Path(tempfile.mkdtemp(prefix="nof0e-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_embedded_servers_from_empty_dir_are_reused(data_dir):
    cfg = load_config(ETC, env={"NOF0_DATA_DIR": str(data_dir)})
    servers = resolve_servers(cfg)
    try:
        assert servers.embedded
        assert servers.postgres_dsn.endswith(f"?host={data_dir}/pg")
        assert servers.redis_url == f"unix://{data_dir}/redis/redis.sock"
        assert migrate(servers.postgres_dsn)[:2] == ["001_domain", "002_refresh_helpers"]
        with psycopg.connect(servers.postgres_dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO models (id, display_name) VALUES ('m', 'M')")
            assert conn.execute("SHOW server_version").fetchone()[0].startswith("16")
        r = redis.Redis.from_url(servers.redis_url)
        r.set("nof0:probe", "kept")
        r.close()
    finally:
        servers.stop()
    assert (data_dir / "redis" / "nof0.rdb").exists()
    assert not (data_dir / "pg" / "postmaster.pid").exists(), "postgres must stop with its last user"

    again = resolve_servers(cfg)  # second run: same data
    try:
        assert status(again.postgres_dsn).current
        with psycopg.connect(again.postgres_dsn) as conn:
            assert conn.execute("SELECT display_name FROM models").fetchone()[0] == "M"
        r = redis.Redis.from_url(again.redis_url)
        assert r.get("nof0:probe") == b"kept"
        r.close()
    finally:
        again.stop()


def test_cli_doctor_on_embedded(data_dir):
    env = {**os.environ, "NOF0_DATA_DIR": str(data_dir)}
    env.pop("NOF0_POSTGRES_DSN", None)
    env.pop("NOF0_REDIS_URL", None)
    nof0 = [sys.executable, "-m", "nof0.cli", "--config", str(ETC)]
    first = subprocess.run([*nof0, "doctor"], env=env, capture_output=True, text=True, cwd=REPO)
    assert first.returncode == 1 and "run `nof0 migrate`" in first.stdout
    mig = subprocess.run([*nof0, "migrate"], env=env, capture_output=True, text=True, cwd=REPO)
    assert mig.returncode == 0, mig.stderr
    ok = subprocess.run([*nof0, "doctor"], env=env, capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PostgreSQL 16" in ok.stdout and "Redis 6.2" in ok.stdout and "all checks passed" in ok.stdout


def test_too_long_data_dir_is_refused_with_advice(tmp_path):
    deep = tmp_path / ("x" * 90)
    with pytest.raises(EmbeddedError, match="too long for a Unix socket.*NOF0_DATA_DIR"):
        EmbeddedPostgres(deep).start()


def test_second_process_attaches_and_leaves_the_server_running(data_dir):
    """`nof0 run` in one terminal, `nof0 import` or `doctor` in another: one Redis, stopped by the last."""
    from nof0.embedded import EmbeddedRedis

    first, second = EmbeddedRedis(data_dir), EmbeddedRedis(data_dir)
    url = first.start()
    user = redis.Redis.from_url(url)  # the first process's own connection (its runtime)
    user.set("nof0:probe", "1")
    try:
        assert second.start() == url
        second.stop()  # the second process exits while the first still uses the server
        assert user.get("nof0:probe") == b"1"
        pid = user.info("server")["process_id"]
    finally:
        user.close()
    first.stop()
    assert not (data_dir / "redis" / "redis.sock").exists()
    assert (data_dir / "redis" / "nof0.rdb").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
