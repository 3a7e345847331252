"""``nof0 doctor`` against the test servers and against servers that are not there."""

from __future__ import annotations

from nof0.doctor import run_doctor
from nof0.runtime import Servers
from tests.conftest import make_config


def test_doctor_ok_and_counts_keys(config, redis_sync, redis_prefix):
    redis_sync.set(f"{redis_prefix}:price:latest:BTC", "{}")
    redis_sync.hset(f"{redis_prefix}:positions:gpt-5", "BTC", "{}")
    checks = {c.name: c for c in run_doctor(config, Servers(config.root.postgres.dsn, config.root.redis.url))}
    assert all(c.ok for c in checks.values()), checks
    assert "001_domain, 002_refresh_helpers" in checks["migrations"].detail
    assert "2 keys" in checks["keys"].detail
    assert "price:latest:{symbol}=1" in checks["keys"].detail


def test_doctor_reports_unreachable_servers_with_advice(redis_prefix):
    cfg = make_config("postgresql://postgres@127.0.0.1:1/none", "redis://127.0.0.1:1/0", redis_prefix)
    checks = {c.name: c for c in run_doctor(cfg, Servers(cfg.root.postgres.dsn, cfg.root.redis.url))}
    assert not checks["postgres"].ok and "NOF0_POSTGRES_DSN" in checks["postgres"].advice
    assert not checks["redis"].ok and "NOF0_REDIS_URL" in checks["redis"].advice


def test_cli_reports_unreachable_server_in_one_line(capsys, monkeypatch):
    from nof0.cli import main

    monkeypatch.setenv("NOF0_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:1/none")
    monkeypatch.setenv("NOF0_REDIS_URL", "redis://127.0.0.1:1/0")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cannot reach PostgreSQL:") and "nof0 doctor" in err and "Traceback" not in err
    assert main(["rollback", "0"]) == 2
    assert "at least 1, got 0" in capsys.readouterr().err
