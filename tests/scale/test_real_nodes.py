"""Two ``nof0 run --role api`` processes on a real Redis Cluster and a Postgres primary with a streaming
replica: both serve the same arena; with the replica dead, and then one of them killed, the API still
answers. (Engine processes sharing traders: tests/scale/test_leases.py, test_shared_traders.py, and the
kill -9 of an engine process on the same nodes: test_engine_failover.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from nof0.config import load_config
from nof0.db.migrate import migrate
from tests.conftest import ETC, REPO
from tests.ops.arena import MODELS, seed_arena
from tests.scale.nodes import free_port, postgres_pair, redis_cluster, wait_for


def _get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        assert r.status == 200
        return json.loads(r.read())


def _trade_ids(port: int) -> set[str]:
    return {t["id"] for t in _get(port, "/api/trades")["trades"]}


@pytest.fixture
def arena_nodes():
    with redis_cluster(3) as nodes, postgres_pair() as (primary, replica):
        migrate(primary.dsn)
        env = {**os.environ, "NOF0_POSTGRES_DSN": primary.dsn, "NOF0_POSTGRES_READ_DSN": replica.dsn,
               "NOF0_REDIS_CLUSTER_NODES": ",".join(nodes)}
        env.pop("NOF0_REDIS_URL", None)
        seed_arena(load_config(ETC, env=env))
        yield env, replica


def test_two_api_processes_serve_the_arena_through_a_dead_replica_and_a_dead_peer(arena_nodes):
    env, replica = arena_nodes
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "nof0.cli", "--config", str(ETC), "run", "--role", "api",
                               "--host", "127.0.0.1", "--port", str(p)], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in ports]
    try:
        for p in ports:
            wait_for(lambda p=p: _get(p, "/readyz") is not None, f"the API on port {p}")
        want = _trade_ids(ports[0])
        assert len(want) == 3 * len(MODELS) and _trade_ids(ports[1]) == want

        replica.stop("immediate")
        assert _trade_ids(ports[0]) == want and _trade_ids(ports[1]) == want

        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(30)
        for _ in range(3):
            assert _trade_ids(ports[1]) == want
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
