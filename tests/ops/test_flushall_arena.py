"""Done-when of issue 11 (design 3.4.2): ``nof0 run`` runs the shipped sim arena (its three traders, made
quicker) on a Redis of the test's own; FLUSHALL; within 30 s every design key family is back with the
values Postgres implies.

"What Postgres implies" is what the family's own publisher writes from Postgres at that moment into a
second prefix of the same Redis (the rebuild's code, fed the same owners); the arena's keys are compared
with it family by family. The arena keeps moving (a tick a second, marks every 2 s), so each family is
compared until it matches once, before the deadline; the traders are paused first so that trades,
conversations and states hold still. The trades stream is compared too, ids included: the outbox
refills it with each trade once, in order. The watcher's reason (``dropped``) is read back from the sentinel."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import redis
import yaml

from nof0.analytics.publish import rebuild_leaderboard, rebuild_since_inception, republish_analytics
from nof0.cache.keys import Keyspace, KeyType
from nof0.jobs import rebuild_repository
from nof0.jobs.cache_watch import family_keys
from nof0.jobs.rebuild import FAMILIES
from nof0.runtime import Servers, open_runtime
from tests.api.test_api_server import _free_port
from tests.arena_etc import pin_sim_market
from tests.conftest import ETC, make_config
from tests.ops.private_redis import private_redis

PREFIX, EXPECTED = "arena", "expected"
DEADLINE_S = 30
QUICK = {"decision_interval": "2s", "cooldown": {"after_close": "2s", "after_loss": "2s"}}


def _etc(tmp_path: Path) -> tuple[Path, list[str]]:
    etc = tmp_path / "etc"
    shutil.copytree(ETC.parent, etc)
    manifest = yaml.safe_load((etc / "nof0.yaml").read_text())
    manifest["redis"]["prefix"] = PREFIX
    manifest["api"]["port"] = _free_port()
    (etc / "nof0.yaml").write_text(yaml.safe_dump(manifest))
    manager = yaml.safe_load((etc / "manager.yaml").read_text())
    traders = manager["traders"]
    for i, t in enumerate(traders):
        t.update(QUICK)
        t["risk_params"]["min_liquidity_usd"] = 0
        # the last one holds what it opens (open positions to mark), the others close soon (trades)
        t["strategy_params"]["max_hold"] = "1h" if i == len(traders) - 1 else "3s"
    (etc / "manager.yaml").write_text(yaml.safe_dump(manager))
    pin_sim_market(etc)
    return etc / "nof0.yaml", [t["id"] for t in traders]


def _one(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchone()[0]


def _wait_until(proc: subprocess.Popen, check, what: str, deadline_s: float = 180) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"nof0 run exited {proc.returncode}: {proc.stderr.read().decode()[-3000:]}")
        if check():
            return
        time.sleep(0.2)  # another process's progress: nothing to wait on
    raise AssertionError(f"timed out waiting for {what}")


def _value(client: redis.Redis, name: str, kind: KeyType):
    """The stored bytes (the writers' encoding is deterministic), None when absent."""
    if kind is KeyType.STRING:
        return client.get(name)
    if kind is KeyType.HASH:
        return client.hgetall(name) or None
    if kind is KeyType.LIST:
        return client.lrange(name, 0, -1) or None
    if kind is KeyType.ZSET:
        return client.zrange(name, 0, -1, withscores=True) or None
    if kind is KeyType.STREAM:  # ids and fields: the outbox republishes each trade once, in order
        return client.xrange(name) or None
    return None


def _family_values(client: redis.Redis, keys, prefix: str) -> dict[str, object]:
    """key name below the prefix -> value, for the keys that exist."""
    out = {}
    for k in keys:
        value = _value(client, k.name, k.type)
        if value is not None:
            out[k.name.removeprefix(prefix + ":")] = value
    return out


async def _publish_expected(rt, family: str, owners) -> None:
    """The family written from Postgres into the expected prefix, by the rebuild's own publishers."""
    if family in FAMILIES:
        publishers, owned_by = FAMILIES[family]
        async with rt.pool.connection() as conn:
            for publish in publishers:
                await publish(rt, conn, getattr(owners, owned_by))
        return
    await {"leaderboard": rebuild_leaderboard, "since_inception": rebuild_since_inception,
           "analytics": republish_analytics}[family](rt)


async def test_flushall_under_a_running_arena_comes_back_from_postgres(tmp_path, pg_dsn):
    manifest, traders = _etc(tmp_path)
    with private_redis() as url:
        env = {**os.environ, "NOF0_POSTGRES_DSN": pg_dsn, "NOF0_REDIS_URL": url, "NOF0_LOG_LEVEL": "warning"}
        client = redis.Redis.from_url(url)
        proc = subprocess.Popen([sys.executable, "-m", "nof0.cli", "--config", str(manifest), "run"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            _wait_until(proc, lambda: client.exists(f"{PREFIX}:cache:sentinel"), "the cold-start rebuild")
            assert json.loads(client.get(f"{PREFIX}:cache:sentinel"))["reason"] == "start"
            _wait_until(proc, lambda: _one(pg_dsn, "SELECT count(*) FROM trades") >= 1
                        and _one(pg_dsn, "SELECT count(*) FROM positions WHERE status = 'open'") >= 1
                        and _one(pg_dsn, "SELECT count(*) FROM model_analytics") >= 1, "trades and open positions")
            for trader in traders:
                paused = subprocess.run([sys.executable, "-m", "nof0.cli", "--config", str(manifest), "traders",
                                         "pause", trader], env=env, capture_output=True, timeout=60)
                assert paused.returncode == 0, paused.stderr

            client.flushall()
            flushed = time.monotonic()
            await _compare_until_every_family_matched(client, pg_dsn, url, flushed)
            assert json.loads(client.get(f"{PREFIX}:cache:sentinel"))["reason"] == "dropped"
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            code = proc.wait(60)
            client.close()
        assert code == 0, proc.stderr.read().decode()[-3000:]


async def _compare_until_every_family_matched(client, pg_dsn: str, url: str, flushed: float) -> None:
    config = make_config(pg_dsn, url, EXPECTED)
    async with open_runtime(config, Servers(pg_dsn, url)) as rt:
        arena = Keyspace(rt.keys.ttl, PREFIX)
        pending = [*family_keys(rebuild_repository.Owners([], [], [], [], []), rt.keys), "ingest_guards"]
        last: dict[str, tuple] = {}
        while pending and time.monotonic() < flushed + DEADLINE_S:
            async with rt.pool.connection() as conn, conn.transaction():
                owners = await rebuild_repository.list_owners(conn)
                guarded = await rebuild_repository.list_guarded_trades(conn, rt.keys.ttl_ms("idempotency"))
            mine, theirs = family_keys(owners, rt.keys), family_keys(owners, arena)
            for family in list(pending):
                if family == "ingest_guards":
                    got = {n.decode() for n in client.scan_iter(match=f"{PREFIX}:ingest:trade:*", count=1000)}
                    want = {arena.ingest_trade(t).name for t, _ in guarded}
                    last[family] = (got, want)
                    if want and got == want:
                        pending.remove(family)
                    continue
                got = _family_values(client, theirs[family], PREFIX)
                await _publish_expected(rt, family, owners)
                want = _family_values(client, mine[family], EXPECTED)
                last[family] = (got, want)
                if want and got == want:
                    pending.remove(family)
            await asyncio.sleep(0.2)
        assert not pending, {f: last.get(f) for f in pending}
