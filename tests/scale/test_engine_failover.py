"""Engine processes sharing the traders on real nodes (docs/scaling.md): a Redis Cluster of three masters,
a Postgres primary with a streaming replica, two ``nof0 run --role engine`` processes and two ``--role api``
ones, all started here on loopback ports. The traders split between the engines; one engine is killed
with SIGKILL mid-session and its traders resume in the other within the lease TTL (the market feed, too, runs
in exactly one of them); a third engine joins and gets its share. Afterwards the store shows nothing lost or doubled: per trader one numbering without
holes, every cycle once, every pending cycle finished, one order per client order id, no fill twice, and
both API processes serve the same trades as the primary holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from redis.cluster import ClusterNode, RedisCluster

from nof0.cache.keys import Keyspace
from nof0.config import load_config
from nof0.db.migrate import migrate
from tests.arena_etc import strategy_trader, write_etc
from tests.conftest import REPO
from tests.scale.nodes import free_port, postgres_pair, redis_cluster

TRADERS = [f"fo{i}" for i in range(6)]
LEASE_S = 2  # ttl.lease: a takeover within a few seconds
INTERVAL_S = 1
DEADLINE_S = 45.0


def _etc(tmp: Path) -> Path:
    trader = strategy_trader(interval_s=INTERVAL_S, max_hold="2s")
    return write_etc(tmp, {"ttl": {"lease": f"{LEASE_S}s"}, "jobs": {"analytics_every": "1h"}},
                     [{"id": t, "name": f"Failover {t}", **trader} for t in TRADERS])


class Arena:
    def __init__(self, manifest: Path, env: dict[str, str], dsn: str, redis: RedisCluster, keys: Keyspace) -> None:
        self.manifest, self.env, self.dsn, self.redis, self.keys = manifest, env, dsn, redis, keys
        self.procs: list[subprocess.Popen] = []

    def start(self, role: str, port: int | None = None) -> subprocess.Popen:
        args = [sys.executable, "-m", "nof0.cli", "--config", str(self.manifest), "run", "--role", role]
        if port is not None:
            args += ["--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(args, env=self.env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def holders(self) -> dict[str, int | None]:
        """Each trader's lease holder, by process id (the owner names ``host:pid:...``)."""
        return {t: self._pid(self.keys.trader_lease(t).name) for t in TRADERS}

    def feed_holder(self) -> int | None:
        return self._pid(self.keys.feed_lease("sim").name)

    def _pid(self, key: str) -> int | None:
        owner = self.redis.get(key)
        return int(owner.decode().split(":")[1]) if owner else None

    def one(self, sql: str, *args):
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(sql, args).fetchone()[0]

    def cycles(self) -> dict[str, int]:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute("SELECT model_id, max(cycle_number) FROM decision_cycles GROUP BY 1").fetchall()
        return {r[0]: r[1] for r in rows}

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


def _until(what: str, check: Callable[[], bool], arena: Arena, deadline_s: float = DEADLINE_S) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        dead = [p.pid for p in arena.procs if p.poll() is not None and p.returncode not in (0, -9)]
        assert not dead, f"processes {dead} exited"
        try:
            if check():
                return
        except (OSError, psycopg.Error):  # a node or a process not up yet
            pass
        time.sleep(0.2)  # other processes' progress: there is no event to wait on
    raise AssertionError(f"timed out waiting for {what}: holders {arena.holders()}, cycles {arena.cycles()}")


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture
def arena(tmp_path) -> Iterator[Arena]:
    with redis_cluster(3) as nodes, postgres_pair() as (primary, replica):
        migrate(primary.dsn)
        env = {**os.environ, "NOF0_POSTGRES_DSN": primary.dsn, "NOF0_POSTGRES_READ_DSN": replica.dsn,
               "NOF0_REDIS_CLUSTER_NODES": ",".join(nodes), "NOF0_LOG_LEVEL": "warning"}
        env.pop("NOF0_REDIS_URL", None)
        manifest = _etc(tmp_path)
        config = load_config(manifest, env=env)
        redis = RedisCluster(startup_nodes=[ClusterNode(*n.split(":")) for n in nodes])
        keys = Keyspace(config.ttl, prefix=config.root.redis.prefix, cluster=True)
        a = Arena(manifest, env, primary.dsn, redis, keys)
        try:
            yield a
        finally:
            a.stop_all()  # before the nodes go: every process started here is stopped, failing or not
            redis.close()


def test_a_killed_engine_s_traders_resume_elsewhere_and_a_joining_one_gets_its_share(arena):
    apis = [free_port(), free_port()]
    for port in apis:
        arena.start("api", port)
    first, second = arena.start("engine"), arena.start("engine")
    pids = {first.pid, second.pid}
    _until("the traders split between both engines, each running, one of them the feed",
           lambda: set(arena.holders().values()) == pids and arena.feed_holder() in pids
           and all(arena.cycles().get(t, 0) >= 2 for t in TRADERS), arena)

    # the victim is the engine running the feed: its traders and the feed move
    victim, survivor = (first, second) if arena.feed_holder() == first.pid else (second, first)
    victims = [t for t, pid in arena.holders().items() if pid == victim.pid]
    at_kill = arena.cycles()
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(30)
    # within the lease TTL (plus a decision interval and a loaded machine's slack) the survivor has them all
    _until("the survivor takes the killed engine's traders and feed",
           lambda: set(arena.holders().values()) == {survivor.pid} and arena.feed_holder() == survivor.pid, arena,
           deadline_s=LEASE_S * 3 + 10)
    _until("the killed engine's traders cycle again",
           lambda: all(arena.cycles()[t] >= at_kill[t] + 2 for t in victims), arena)

    third = arena.start("engine")
    _until("the joining engine gets its share and runs it",
           lambda: list(arena.holders().values()).count(third.pid) == len(TRADERS) // 2
           and set(arena.holders().values()) == {survivor.pid, third.pid}, arena)
    joined = [t for t, pid in arena.holders().items() if pid == third.pid]
    at_join = arena.cycles()
    _until("the joined traders cycle in the new engine", lambda: all(
        arena.cycles()[t] >= at_join[t] + 2 for t in joined), arena)
    for proc in (survivor, third):
        os.killpg(proc.pid, signal.SIGTERM)
    assert survivor.wait(60) == 0 and third.wait(60) == 0

    with psycopg.connect(arena.dsn) as conn:
        for t in TRADERS:
            cycles = conn.execute("SELECT cycle_number, run_id, decisions FROM decision_cycles WHERE model_id = %s"
                                  " ORDER BY cycle_number", (t,)).fetchall()
            numbers = [c[0] for c in cycles]
            assert numbers == list(range(1, len(numbers) + 1)), t  # none lost, none run twice
            assert not [d for c in cycles for d in c[2] if d.get("status") == "pending"], t
            oids = [d["oid"] for c in cycles for d in c[2] if d.get("action") == "open" and d["status"] == "executed"]
            assert len(oids) == len(set(oids)), t
        assert {r[0] for r in conn.execute(
            "SELECT model_id FROM decision_cycles GROUP BY 1 HAVING count(DISTINCT run_id) >= 2")} >= set(victims)
        assert conn.execute("SELECT count(*) FROM (SELECT 1 FROM sim_orders WHERE cloid IS NOT NULL"
                            " GROUP BY trader_id, cloid HAVING count(*) > 1) d").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM (SELECT 1 FROM fills GROUP BY model_id, tid"
                            " HAVING count(*) > 1) d").fetchone()[0] == 0
        fills = conn.execute("SELECT count(*) FROM fills").fetchone()[0]
        trades = conn.execute("SELECT count(*) FROM trades").fetchone()[0]
    assert fills > 0
    _until("both API processes serve the primary's trades", lambda: all(
        len(_get(p, "/api/trades")["trades"]) == trades for p in apis), arena)
