"""``nof0 analytics``, ``nof0 jobs`` and ``nof0 refresh-views`` as a user runs them."""

from __future__ import annotations

import json
import shutil

import psycopg
import pytest
import yaml

from nof0.cli import main
from tests.analytics.seed import seed_arena
from tests.conftest import ETC


@pytest.fixture
def cli_config(tmp_path, pg_dsn, test_servers, redis_prefix, monkeypatch):
    """A copy of etc/ whose Redis prefix is the test's, with the test's servers in the environment."""
    for f in ETC.parent.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    manifest = yaml.safe_load((tmp_path / "nof0.yaml").read_text())
    manifest["redis"]["prefix"] = redis_prefix
    manifest["log"]["level"] = "warning"
    (tmp_path / "nof0.yaml").write_text(yaml.safe_dump(manifest))
    monkeypatch.setenv("NOF0_POSTGRES_DSN", pg_dsn)
    monkeypatch.setenv("NOF0_REDIS_URL", test_servers.redis_url)
    return str(tmp_path / "nof0.yaml")


def test_analytics_command_computes_persists_and_publishes(cli_config, pg_dsn, redis_sync, redis_prefix, capsys):
    arena = seed_arena(pg_dsn, n_models=3, trades_per_model=6)
    assert main(["--config", cli_config, "analytics"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("analytics done in ")
    assert "models computed 4, skipped (locked by another worker) 0, failed 0" in out
    assert f"facts: {sum(len(t) for t in arena.trades.values())} trades" in out
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM model_analytics").fetchone()[0] == 4
        status = conn.execute("SELECT last_status, runs FROM job_runs WHERE job = 'analytics'").fetchone()
    assert status == ("ok", 1)
    body = json.loads(redis_sync.get(f"{redis_prefix}:analytics:all"))
    assert sorted(a["model_id"] for a in body["analytics"]) == sorted(arena.models)
    assert redis_sync.zcard(f"{redis_prefix}:leaderboard") == 4

    assert main(["--config", cli_config, "analytics", "--model", "model-1", "--model", "ghost"]) == 0
    out = capsys.readouterr().out
    assert "models computed 1," in out and "unknown ghost" in out

    assert main(["--config", cli_config, "jobs"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("analytics: ok,") and "runs 2, failures 0" in out


def test_refresh_views_command_still_works(cli_config, pg_dsn, capsys):
    seed_arena(pg_dsn, n_models=2, trades_per_model=2)
    assert main(["--config", cli_config, "refresh-views"]) == 0
    assert "refresh_views_nof0() done" in capsys.readouterr().out
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM v_leaderboard").fetchone()[0] == 3


def test_jobs_command_before_any_run(cli_config, capsys):
    assert main(["--config", cli_config, "jobs"]) == 0
    assert capsys.readouterr().out.strip() == "no job has run yet"
