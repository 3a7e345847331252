"""``nof0 traders pause|resume|status`` as an operator runs them, against the state the manager reads."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import psycopg
import pytest

from nof0.traders.commands import FOREVER, parse_until
from tests.ingest.test_ingest_commands import etc_dir, nof0  # noqa: F401 - the fixture and the runner

NOW = datetime(2025, 10, 26, 12, 0, tzinfo=timezone.utc)


def test_parse_until():
    assert parse_until(None, NOW) == FOREVER
    assert parse_until("30m", NOW) == datetime(2025, 10, 26, 12, 30, tzinfo=timezone.utc)
    assert parse_until("2025-10-27T08:00:00", NOW) == datetime(2025, 10, 27, 8, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="--until 'soonish'"):
        parse_until("soonish", NOW)


def test_pause_resume_status(etc_dir, pg_dsn, test_servers):  # noqa: F811
    trader = "trader_aggressive_short"
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "traders", "pause", trader, "--until", "2099-01-01T00:00:00Z")
    assert run.returncode == 0, run.stderr
    assert "paused until 2099-01-01T00:00:00+00:00" in run.stdout.decode()
    with psycopg.connect(pg_dsn) as conn:
        (pause, cooldown), = conn.execute("SELECT pause_until, cooldown FROM trader_state WHERE trader_id = %s",
                                          (trader,))
    assert pause == datetime(2099, 1, 1, tzinfo=timezone.utc) and cooldown == {}
    status = nof0(etc_dir, pg_dsn, test_servers.redis_url, "traders", "status")
    entries = {e["trader"]: e for e in map(json.loads, status.stdout.decode().splitlines())}
    assert entries[trader]["status"] == "paused" and entries[trader]["pause_until"] == 4070908800.0
    assert entries[trader]["budget_today"]["calls"] == 0
    resumed = nof0(etc_dir, pg_dsn, test_servers.redis_url, "traders", "resume", trader)
    assert resumed.returncode == 0 and f"{trader}: resumed" in resumed.stdout.decode()
    status = nof0(etc_dir, pg_dsn, test_servers.redis_url, "traders", "status")
    entries = {e["trader"]: e for e in map(json.loads, status.stdout.decode().splitlines())}
    assert entries[trader]["status"] == "running" and entries[trader]["pause_until"] is None


def test_pause_names_an_unknown_trader(etc_dir, pg_dsn, test_servers):  # noqa: F811
    run = nof0(etc_dir, pg_dsn, test_servers.redis_url, "traders", "pause", "ghost")
    assert run.returncode == 2 and "unknown trader 'ghost'" in run.stderr.decode()
