"""kill -9 of ``nof0 run`` in the middle of a trading session, then a restart: no cycle, fill or trade
lost or duplicated, the numbering continues, pauses and cooldowns hold.

The session is real: the sim market and the sim exchange in the ``nof0 run`` process, two traders
running a built-in strategy every 2 s. The test waits for the process's progress by reading Postgres
(the only way to watch another process), with a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.api.test_api_server import _free_port
from tests.arena_etc import strategy_trader, write_etc

A, B = "kill_a", "kill_b"
INTERVAL_S = 2
AFTER_CLOSE_MS = 4_000


def _etc(tmp_path: Path, prefix: str) -> Path:
    after_close = f"{AFTER_CLOSE_MS // 1000}s"
    trader = strategy_trader(interval_s=INTERVAL_S, max_hold="3s",
                             cooldown={"after_close": after_close, "after_loss": after_close})
    return write_etc(tmp_path, {"redis": {"prefix": prefix}, "api": {"port": _free_port()},
                                "jobs": {"analytics_every": "1h"}},
                     [{"id": A, "name": "Kill A", **trader}, {"id": B, "name": "Kill B", **trader}])


def _env(pg_dsn: str, redis_url: str) -> dict[str, str]:
    return {**os.environ, "NOF0_POSTGRES_DSN": pg_dsn, "NOF0_REDIS_URL": redis_url, "NOF0_LOG_LEVEL": "warning"}


def _start(manifest: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nof0.cli", "--config", str(manifest), "run"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _one(dsn: str, sql: str, *args):
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchone()[0]


def _wait(proc: subprocess.Popen, dsn: str, sql: str, args: tuple, at_least: int, deadline_s: float = 120) -> int:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"nof0 run exited {proc.returncode}: {proc.stderr.read().decode()[-3000:]}")
        n = _one(dsn, sql, *args)
        if n >= at_least:
            return n
        time.sleep(0.2)  # another process's progress: there is no event to wait on
    raise AssertionError(f"timed out waiting for {sql} >= {at_least}")


CYCLES = "SELECT count(*) FROM decision_cycles WHERE model_id = %s"
FILLS = "SELECT count(*) FROM fills WHERE model_id = %s"


def test_kill_9_mid_session_loses_and_repeats_nothing(tmp_path, pg_dsn, test_servers, redis_prefix):
    manifest = _etc(tmp_path, redis_prefix)
    env = _env(pg_dsn, test_servers.redis_url)
    first = _start(manifest, env)
    try:
        _wait(first, pg_dsn, CYCLES, (A,), 3)
        _wait(first, pg_dsn, FILLS, (A,), 2)
        paused = subprocess.run([sys.executable, "-m", "nof0.cli", "--config", str(manifest), "traders", "pause", B],
                                env=env, capture_output=True, timeout=60)
        assert paused.returncode == 0, paused.stderr
        b_at_pause = _one(pg_dsn, CYCLES, B)
        _wait(first, pg_dsn, CYCLES, (A,), _one(pg_dsn, CYCLES, A) + 2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
    a_at_kill = _one(pg_dsn, CYCLES, A)
    second = _start(manifest, env)
    try:
        _wait(second, pg_dsn, CYCLES, (A,), a_at_kill + 4)
        _wait(second, pg_dsn, "SELECT count(*) FROM trades WHERE model_id = %s", (A,), 1)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        assert second.wait(60) == 0, second.stderr.read().decode()[-3000:]

    with psycopg.connect(pg_dsn) as conn:
        cycles = conn.execute("SELECT cycle_number, run_id, decisions, executed_at FROM decision_cycles"
                              " WHERE model_id = %s ORDER BY cycle_number", (A,)).fetchall()
        numbers = [c[0] for c in cycles]
        assert numbers == list(range(1, len(numbers) + 1))  # none lost, none run twice
        assert len({c[1] for c in cycles}) == 2  # two runs, one numbering
        assert not [d for c in cycles for d in c[2] if d.get("status") == "pending"]  # every pending cycle finished
        # every executed entry was placed once: one sim order per entry client order id, fills only for those
        entries = [(c[0], d) for c in cycles for d in c[2] if d.get("action") == "open" and d["status"] == "executed"]
        assert entries
        oids = [d["oid"] for _, d in entries]
        assert len(oids) == len(set(oids))
        dup_fills = conn.execute("SELECT count(*) FROM (SELECT tid FROM fills GROUP BY model_id, tid"
                                 " HAVING count(*) > 1) d").fetchone()[0]
        assert dup_fills == 0
        # the store's open positions are the exchange's: the restart found nothing to reconcile
        (guards,) = conn.execute("SELECT risk_guards FROM trader_state WHERE trader_id = %s", (A,)).fetchone()
        assert guards["reconciliation"]["differences"] == []
        # every trade's round trip is built from fills the exchange made (none lost): entries and exits known
        trades = conn.execute("SELECT symbol, entry_oid, exit_oid, exit_ts_ms FROM trades WHERE model_id = %s",
                              (A,)).fetchall()
        fill_oids = {r[0] for r in conn.execute("SELECT oid FROM fills WHERE model_id = %s", (A,))}
        assert trades and all(t[1] in fill_oids and t[2] in fill_oids for t in trades)
        # cooldowns held: no entry on a symbol within after_close of its last exit, across the restart
        for n, d in entries:
            at_ms = int(next(c[3] for c in cycles if c[0] == n).timestamp() * 1000)
            for symbol, _, _, exit_ms in trades:
                assert not (symbol == d["symbol"] and exit_ms < at_ms < exit_ms + AFTER_CLOSE_MS), (n, d, exit_ms)
        # the pause survived the kill: B made at most the cycle in flight when it was paused
        assert _one(pg_dsn, CYCLES, B) <= b_at_pause + 1
