"""Scale-out benchmark (docs/scaling.md): API req/s with 1, 2 and 3 ``nof0 run --role api`` processes on the
same Redis Cluster, under wrk.

    .venv/bin/python bench/scale_bench.py [--duration 6] [--connections 16] [--postgres ADMIN_DSN]

Starts a 3-master Redis Cluster on loopback ports (the machine's redis-server and redis-cli), creates a
database on ``--postgres`` (or ``NOF0_POSTGRES_DSN``, default ``postgresql://postgres@127.0.0.1:5432/postgres``),
migrates it and ingests a small arena, then for N = 1, 2, 3 starts N API processes and runs one wrk per
process at once on ``/api/leaderboard`` (keep-alive, one thread, ``--connections`` each), summing their req/s.
Prints req/s per N and the ratio against N = 1 measured in the same run. Everything it started is stopped
and the database dropped. On a machine with fewer cores than processes + wrk instances the ratio is bounded
by the cores, not by nof0: read it beside ``nproc``.

The engine half of issue 14 (cycle cost from one to three engine processes at 500 traders) needs the traders'
manager on leases (docs/scaling.md "What is not done yet"); it is not measured here yet.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from nof0.config import load_config  # noqa: E402
from nof0.db.migrate import migrate  # noqa: E402
from tests.ops.arena import seed_arena  # noqa: E402
from tests.scale.nodes import free_port, redis_cluster, wait_for  # noqa: E402


def _with_db(admin: str, name: str) -> str:
    return admin.rsplit("/", 1)[0] + f"/{name}"


def _ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
        return r.status == 200


def _wrk(ports: list[int], duration: int, connections: int) -> float:
    procs = [subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{duration}s",
                               f"http://127.0.0.1:{p}/api/leaderboard"], stdout=subprocess.PIPE, text=True)
             for p in ports]
    total = 0.0
    for proc in procs:
        out, _ = proc.communicate(timeout=duration + 60)
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if "Non-2xx" in out or "Socket errors" in out:
            print("  wrk saw errors: " + " | ".join(l.strip() for l in out.splitlines()
                                                   if "Non-2xx" in l or "Socket errors" in l), flush=True)
        total += float(m.group(1)) if m else 0.0
    return total


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=6)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--postgres", default=os.environ.get("NOF0_POSTGRES_DSN",
                                                         "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = ap.parse_args()
    name = f"nof0_scale_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = _with_db(args.postgres, name)
    results: dict[int, float] = {}
    try:
        migrate(dsn)
        with redis_cluster(3) as nodes:
            env = {**os.environ, "NOF0_POSTGRES_DSN": dsn, "NOF0_REDIS_CLUSTER_NODES": ",".join(nodes),
                   "NOF0_LOG_LEVEL": "warning"}
            env.pop("NOF0_REDIS_URL", None)
            seed_arena(load_config(REPO / "etc" / "nof0.yaml", env=env))
            for n in (1, 2, 3):
                ports = [free_port() for _ in range(n)]
                procs = [subprocess.Popen([sys.executable, "-m", "nof0.cli", "run", "--role", "api", "--host",
                                           "127.0.0.1", "--port", str(p)], env=env, cwd=REPO,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in ports]
                try:
                    for p in ports:
                        wait_for(lambda p=p: _ready(p), f"API on port {p}")
                    _wrk(ports, 1, 4)  # warm the response caches
                    results[n] = _wrk(ports, args.duration, args.connections)
                finally:
                    for proc in procs:
                        proc.terminate()
                    for proc in procs:
                        proc.wait(30)
                print(f"api processes {n}: {results[n]:,.0f} req/s  x{results[n] / results[1]:.2f} of one",
                      flush=True)
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"cores: {os.cpu_count()}; engine cycle cost at 500 traders: not measured (see the docstring)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
