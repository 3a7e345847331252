"""The commands as an operator runs them: ``nof0 ingest FILE|-``, ``nof0 traders sync``, ``nof0 import DIR``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ETC, FIXTURES
from tests.ingest.factories import T0


@pytest.fixture
def etc_dir(tmp_path, redis_prefix) -> Path:
    """A copy of etc/ whose keys live under the test's Redis prefix."""
    d = tmp_path / "etc"
    shutil.copytree(ETC.parent, d)
    manifest = d / "nof0.yaml"
    manifest.write_text(manifest.read_text().replace("prefix: nof0 ", f"prefix: {redis_prefix} "))
    assert redis_prefix in manifest.read_text()
    return d


def nof0(etc_dir: Path, pg_dsn: str, redis_url: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "NOF0_POSTGRES_DSN": pg_dsn, "NOF0_REDIS_URL": redis_url, "NOF0_LOG_LEVEL": "warning"}
    return subprocess.run([sys.executable, "-m", "nof0.cli", "--config", str(etc_dir / "nof0.yaml"), *args],
                          input=stdin, capture_output=True, env=env, timeout=120)


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchone()[0]


LINES = [
    {"type": "model", "id": "gpt-5", "display_name": "GPT 5"},
    {"type": "symbol", "symbol": "BTC"},
    {"type": "price_tick", "symbol": "BTC", "price": 111317.5, "ts_ms": T0},
    {"type": "price_tick", "symbol": "BTC", "price": "oops", "ts_ms": T0 + 1},
    {"type": "fill", "model_id": "gpt-5", "symbol": "BTC", "side": "buy", "price": 111000.0, "size": 0.1,
     "fee_usd": 5.0, "ts_ms": T0 + 2, "oid": 1, "tid": 11},
]


def test_ingest_file_summarises_and_fails_on_rejections(tmp_path, etc_dir, pg_dsn, test_servers, redis_sync, redis_prefix):
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(x) for x in LINES) + "\n")
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "ingest", str(feed))
    assert run.returncode == 1, run.stderr
    assert run.stdout.decode().strip() == "accepted 4, duplicates 0, rejected 1"
    assert "rejected line 4 (price_tick): price='oops': Expected `float`, got `str`" in run.stderr.decode()
    assert _count(pg_dsn, "SELECT count(*) FROM fills") == 1
    assert redis_sync.exists(f"{redis_prefix}:price:latest:BTC") == 1
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(x) for i, x in enumerate(LINES) if i != 3))
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "ingest", str(good))
    assert (run.returncode, run.stdout.decode().strip()) == (0, "accepted 0, duplicates 4, rejected 0")


def test_ingest_stdin_pipe(etc_dir, pg_dsn, test_servers):
    data = "".join(json.dumps(x) + "\n" for i, x in enumerate(LINES) if i != 3).encode()
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "ingest", "-", stdin=data)
    assert (run.returncode, run.stdout.decode().strip()) == (0, "accepted 4, duplicates 0, rejected 0"), run.stderr
    assert _count(pg_dsn, "SELECT count(*) FROM ingest_dead_letters") == 0


def test_traders_sync(etc_dir, pg_dsn, test_servers, redis_sync, redis_prefix):
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "traders", "sync")
    assert run.returncode == 0, run.stderr
    assert "accepted 6, duplicates 0, rejected 0" in run.stdout.decode()
    with psycopg.connect(pg_dsn) as conn:
        (name, cfg), = conn.execute("SELECT display_name, trader_config FROM models WHERE id = 'trader_aggressive_short'")
        state = conn.execute("SELECT exchange_provider, market_provider, allocation_pct, cooldown, risk_guards"
                             " FROM trader_state WHERE trader_id = 'trader_aggressive_short'").fetchone()
    assert name == "Aggressive Short" and cfg["model"] == "strategy:mean_reversion" and cfg["risk_params"]["max_positions"] == 3
    assert state[:3] == ("sim", "sim", 33.0)
    assert state[3] == {} and state[4]["cooldown"] == {"after_loss": "1m", "after_close": "30s"}
    assert state[4]["min_liquidity_usd"] == 1_000_000
    assert redis_sync.hget(f"{redis_prefix}:trader:trader_aggressive_short:state", "exchange_provider") == b"sim"
    # a one-off load: the new models are on the leaderboard at once
    assert redis_sync.zscore(f"{redis_prefix}:leaderboard", "trader_aggressive_short") == 0.0
    again = nof0(etc_dir, pg_dsn, test_servers.redis_url, "traders", "sync")
    assert "accepted 0, duplicates 6, rejected 0" in again.stdout.decode()


def test_traders_sync_names_the_trader_and_unknown_provider(etc_dir, pg_dsn, test_servers):
    manager = etc_dir / "manager.yaml"
    manager.write_text(manager.read_text().replace("exchange_provider: sim", "exchange_provider: binance", 1))
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "traders", "sync")
    assert run.returncode == 2
    err = run.stderr.decode()
    assert "traders[0].exchange_provider" in err and "'trader_aggressive_short'" in err and "'binance'" in err


def test_import_command(etc_dir, pg_dsn, test_servers, tmp_path):
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "import", str(FIXTURES))
    assert run.returncode == 0, run.stderr
    assert _count(pg_dsn, "SELECT count(*) FROM trades") == 230
    again = nof0(etc_dir, pg_dsn, test_servers.redis_url, "import", str(FIXTURES))
    assert again.stdout.decode().startswith("accepted 0, duplicates ")
    empty = nof0(etc_dir, pg_dsn, test_servers.redis_url, "import", str(tmp_path))
    assert empty.returncode == 2 and "no nof1 snapshot file here" in empty.stderr.decode()


def test_ingest_refreshes_the_views_it_feeds(tmp_path, etc_dir, pg_dsn, test_servers):
    feed = tmp_path / "equity.jsonl"
    feed.write_text(json.dumps({"type": "model", "id": "m1"}) + "\n" + json.dumps(
        {"type": "equity_snapshot", "model_id": "m1", "ts_ms": T0, "equity_usd": 12_500.0}) + "\n")
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "ingest", str(feed))
    assert run.returncode == 0, run.stderr
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT equity, return_pct FROM v_leaderboard").fetchone() == (12_500.0, 25.0)
    missing = nof0(etc_dir, pg_dsn, test_servers.redis_url, "ingest", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr.decode()


# ---------------------------------------------------------------------- after the load (review of issue 3, 11)

TRADED = [
    {"type": "model", "id": "m1"}, {"type": "symbol", "symbol": "BTC"},
    {"type": "fill", "model_id": "m1", "symbol": "BTC", "side": "buy", "price": 100.0, "size": 1.0, "fee_usd": 0.1,
     "ts_ms": T0, "oid": 1, "tid": 1},
    {"type": "fill", "model_id": "m1", "symbol": "BTC", "side": "sell", "price": 110.0, "size": 1.0, "fee_usd": 0.1,
     "ts_ms": T0 + 60_000, "oid": 2, "tid": 2},
]


def test_ingest_rebuilds_the_leaderboard_since_inception_and_analytics_caches(tmp_path, etc_dir, pg_dsn, test_servers,
                                                                              redis_sync, redis_prefix):
    feed = tmp_path / "traded.jsonl"
    feed.write_text("".join(json.dumps(x) + "\n" for x in TRADED))
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "ingest", str(feed))
    assert run.returncode == 0, run.stderr
    assert redis_sync.zscore(f"{redis_prefix}:leaderboard", "m1") == pytest.approx(0.098)
    assert json.loads(redis_sync.get(f"{redis_prefix}:leaderboard:cache"))["leaderboard"][0]["id"] == "m1"
    assert redis_sync.llen(f"{redis_prefix}:since_inception:m1") == 2
    assert json.loads(redis_sync.get(f"{redis_prefix}:analytics:m1"))["model_id"] == "m1"


def test_a_failed_refresh_after_a_committed_ingest_is_one_line_and_exit_1(tmp_path, etc_dir, pg_dsn, test_servers):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # this test's own database: views that cannot refresh
        conn.execute("CREATE OR REPLACE FUNCTION refresh_views_nof0() RETURNS void LANGUAGE plpgsql"
                     " AS $$ BEGIN RAISE EXCEPTION 'views are broken'; END $$")
    feed = tmp_path / "traded.jsonl"
    feed.write_text("".join(json.dumps(x) + "\n" for x in TRADED))
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "ingest", str(feed))
    err = run.stderr.decode()
    assert run.returncode == 1 and "Traceback" not in err, err
    assert run.stdout.decode().strip() == "accepted 4, duplicates 0, rejected 0"
    (line,) = [x for x in err.splitlines() if x.startswith("ingest:")]
    assert line.startswith("ingest: the data is stored, but analytics: ") and "views are broken" in line
    assert _count(pg_dsn, "SELECT count(*) FROM trades") == 1  # committed before the jobs ran
    manifest = etc_dir / "nof0.yaml"
    manifest.write_text(manifest.read_text().replace("refresh_after_ingest: true", "refresh_after_ingest: false"))
    feed.write_text(json.dumps({"type": "equity_snapshot", "model_id": "m1", "ts_ms": T0 + 5, "equity_usd": 1.0}))
    quiet = nof0(etc_dir, pg_dsn, test_servers.redis_url, "ingest", str(feed))
    assert quiet.returncode == 0, quiet.stderr


def test_import_computes_the_imported_models_analytics(etc_dir, pg_dsn, test_servers, redis_sync, redis_prefix):
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "import", str(FIXTURES))
    assert run.returncode == 0, run.stderr
    traded = {t["model_id"] for t in json.loads((FIXTURES / "trades.json").read_text())["trades"]}
    for model_id in traded:
        assert json.loads(redis_sync.get(f"{redis_prefix}:analytics:{model_id}"))["model_id"] == model_id
    models = {r["model_id"] for r in json.loads((FIXTURES / "since-inception-values.json").read_text())[
        "sinceInceptionValues"]}
    assert {m.decode() for m in redis_sync.zrange(f"{redis_prefix}:leaderboard", 0, -1)} == models


def test_a_line_longer_than_the_limit_on_a_pipe_is_rejected_and_skipped(etc_dir, pg_dsn, test_servers):
    huge = json.dumps({"type": "conversation_message", "model_id": "gpt-5", "role": "user",
                       "content": "x" * (65 * 1024 * 1024), "ts_ms": T0})
    data = "\n".join([json.dumps(LINES[0]), json.dumps(LINES[1]), huge, json.dumps(LINES[2])]).encode() + b"\n"
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "ingest", "-", stdin=data)
    assert run.returncode == 1, run.stderr
    assert run.stdout.decode().strip() == "accepted 3, duplicates 0, rejected 1"
    assert f"rejected line 3: line longer than 16777216 bytes ({len(huge)} bytes); skipped" in run.stderr.decode()
    small = nof0(etc_dir, pg_dsn, test_servers.redis_url, "ingest", "-", "--max-line-bytes", "100",
                 stdin=(json.dumps(LINES[4]) + "\n" + json.dumps(LINES[2]) + "\n").encode())
    assert small.returncode == 1 and "rejected line 1: line longer than 100 bytes" in small.stderr.decode()
