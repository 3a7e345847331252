"""API benchmark: one ``nof0 serve`` process beside nginx serving the same bytes, under wrk.

    .venv/bin/python bench/api_bench.py [--duration 10] [--rounds 3] [--connections 32] [--postgres DSN --redis URL]

Loads the 270 KB nof1 trades capture (``tests/fixtures/nof1-2025-10-26/trades.json``, read by this
script, never by the product) into a fresh database, starts ``nof0 serve`` on it, saves the exact
bodies it answers for ``/api/leaderboard`` and ``/api/trades`` as static files, and serves them with
one nginx worker. wrk (one thread, keep-alive, no gzip) measures both in the same run, alternating
rounds; the script prints req/s, p50/p99 latency and the nof0/nginx ratio. Goals (issue 13): at least
0.5 of nginx on ``/api/leaderboard`` and 0.8 on ``/api/trades``.

Then the latency phase: an ingest runs in another process (ticks and fills through ``IngestService``
every 250 ms, the jobs after batches as the service runs them; ``--ingest-followup``: each batch
followed by what a one-off ``nof0 ingest`` runs after a load), while wrk sends ``--rate`` requests/s (default 1,000) spread
over the eight endpoints from ``--rate-connections`` connections. Goal: p99 under 10 ms.

Servers: ``--postgres``/``--redis`` (or ``NOF0_POSTGRES_DSN``/``NOF0_REDIS_URL``); without them the
embedded servers start in a temporary folder. The script creates its own database and Redis key
prefix and removes both afterwards.

Needs wrk and nginx on PATH: ``apt-get install -y wrk nginx`` (Debian/Ubuntu).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from pathlib import Path

import psycopg
import redis
import yaml
from psycopg.types.json import Jsonb

REPO = Path(__file__).resolve().parents[1]
CAPTURE = REPO / "tests" / "fixtures" / "nof1-2025-10-26"
sys.path.insert(0, str(REPO / "src"))

from nof0.db.dsn import with_database  # noqa: E402
from nof0.db.migrate import migrate  # noqa: E402
from nof0.timefmt import s_to_ms  # noqa: E402

ENDPOINTS = ("/api/leaderboard", "/api/trades")
_TRADE_COLUMNS = (
    "id", "trade_id", "model_id", "symbol", "side", "trade_type", "quantity", "leverage", "confidence",
    "entry_price", "exit_price", "realized_gross_pnl", "realized_net_pnl", "total_commission_dollars",
    "entry_oid", "exit_oid", "entry_sz", "exit_sz", "entry_tid", "exit_tid", "entry_crossed", "exit_crossed",
    "entry_liquidation", "exit_liquidation", "entry_commission_dollars", "exit_commission_dollars",
    "entry_closed_pnl", "exit_closed_pnl", "exit_plan",
)


def seeded_database(admin_dsn: str, redis_url: str, db_name: str, embedded: list, tmp: Path) -> tuple[str, str, str, int]:
    """The servers (embedded ones started into ``embedded`` for what is not given) and a migrated database
    ``db_name`` seeded with the capture: (admin DSN, Redis URL, database DSN, trades)."""
    if not admin_dsn or not redis_url:
        from nof0.embedded import EmbeddedPostgres, EmbeddedRedis

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR inside pgserver
            if not admin_dsn:
                embedded.append(EmbeddedPostgres(tmp / "emb"))
                admin_dsn = embedded[-1].start()
            if not redis_url:
                embedded.append(EmbeddedRedis(tmp / "emb"))
                redis_url = embedded[-1].start()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    dsn = with_database(admin_dsn, db_name)
    migrate(dsn)
    return admin_dsn, redis_url, dsn, seed(dsn)


def remove_bench_data(admin_dsn: str, db_name: str, redis_url: str, prefix: str, embedded: list, tmp: Path) -> None:
    """Drop the bench's database and Redis keys, stop the embedded servers, remove the temporary folder."""
    if admin_dsn:
        try:
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        except psycopg.Error:
            pass
    if redis_url:
        try:
            client = redis.Redis.from_url(redis_url)
            keys = list(client.scan_iter(match=f"{prefix}:*"))
            if keys:
                client.delete(*keys)
            client.close()
        except redis.RedisError:
            pass
    for server in reversed(embedded):
        server.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def need_tools() -> None:
    missing = [t for t in ("wrk", "nginx") if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]
    if missing:
        print(f"missing: {', '.join(missing)}; install with: apt-get install -y wrk nginx", file=sys.stderr)
        sys.exit(2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(dsn: str) -> int:
    """The capture's trades, models and since-inception facts; returns the number of trades."""
    trades = json.loads((CAPTURE / "trades.json").read_text())["trades"]
    since = json.loads((CAPTURE / "since-inception-values.json").read_text())["sinceInceptionValues"]
    models = sorted({t["model_id"] for t in trades} | {v["model_id"] for v in since})
    cols = (*_TRADE_COLUMNS, "entry_ts_ms", "exit_ts_ms")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO models (id, display_name) VALUES (%s, %s)", [(m, m) for m in models])
        cur.executemany("INSERT INTO accounts (model_id, starting_capital_usd) VALUES (%s, %s)",
                        [(v["model_id"], v["nav_since_inception"]) for v in since])
        with cur.copy(f"COPY trades ({', '.join(cols)}) FROM STDIN") as copy:
            for t in trades:
                row = [Jsonb(t[c]) if c in ("entry_liquidation", "exit_liquidation", "exit_plan") and t[c] is not None
                       else t[c] for c in _TRADE_COLUMNS]
                copy.write_row([*row, s_to_ms(t["entry_time"]), s_to_ms(t["exit_time"])])
        cur.execute("SELECT refresh_views_nof0()")
    return len(trades)


def write_config(tmp: Path, prefix: str, port: int) -> Path:
    etc = tmp / "etc"
    shutil.copytree(REPO / "etc", etc)
    manifest = yaml.safe_load((etc / "nof0.yaml").read_text())
    manifest["redis"]["prefix"] = prefix
    manifest["api"]["port"] = port
    manifest["log"]["level"] = "warning"
    (etc / "nof0.yaml").write_text(yaml.safe_dump(manifest))
    return etc / "nof0.yaml"


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout}s")


def stop_processes(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url) as r:  # no Accept-Encoding: the identity body, as wrk asks
        return r.read()


def start_nginx(root: Path, port: int, tmp: Path) -> subprocess.Popen:
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        default_type application/json;
        etag on;
    }}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.DEVNULL)


_LAT = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(url: str, duration: int, connections: int, script: Path | None = None) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: float(v) * _UNIT_MS[u] for p, v, u in _LAT.findall(out)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} error responses\n{out}")
    return {"rps": rps, "p50_ms": lat["50"], "p99_ms": lat["99"]}


def paced_script(tmp: Path, paths: list[str], delay_ms: float) -> Path:
    """A wrk script: each connection asks the paths in turn and waits ``delay_ms`` between requests."""
    script = tmp / "paced.lua"
    listed = ", ".join(f'"{p}"' for p in paths)
    script.write_text(f"""
local paths = {{{listed}}}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
delay = function() return {delay_ms} end
""")
    return script


# ----------------------------------------------------------------------------- the ingest beside the API
_SYMBOLS = ("BTC", "ETH", "SOL", "BNB", "DOGE", "XRP")


def ingest_load(manifest: Path, seconds: float, ticks_per_s: int, fills_per_s: int, followup: bool) -> None:
    """Runs in its own process (``--ingest-load``): a batch of ticks and fills every 250 ms for ``seconds``.

    As the service ingests (default): a ``Scheduler`` on the ingest's ``on_committed``, so the views and
    analytics jobs run after batches (debounced) and drop the responses they republish. With
    ``followup``, each batch is treated as a one-off ``nof0 ingest`` load instead (``refresh_after_ingest``:
    every response the batch changed dropped at once and the jobs run), a harsher load than any producer's."""
    import asyncio
    import random

    from nof0.config import load_config
    from nof0.ingest.followup import refresh_after_ingest
    from nof0.ingest.service import IngestService
    from nof0.jobs.scheduler import Scheduler
    from nof0.runtime import open_runtime, resolve_servers

    async def run() -> None:
        config = load_config(manifest)
        async with open_runtime(config, resolve_servers(config)) as rt, Scheduler(rt).running() as scheduler:
            service = IngestService(rt)
            if not followup:
                service.on_committed.append(scheduler.on_committed)
            async with rt.pool.connection() as conn:
                models = [r["id"] for r in await (await conn.execute("SELECT id FROM models ORDER BY id")).fetchall()]
            await service.ingest_lines([json.dumps({"type": "symbol", "symbol": s}).encode() for s in _SYMBOLS],
                                       source="bench")
            rng = random.Random(7)
            marks = {"BTC": 111000.0, "ETH": 3900.0, "SOL": 190.0, "BNB": 1100.0, "DOGE": 0.195, "XRP": 2.6}
            ts, seq, interval = int(time.time() * 1000), 0, 0.25
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            next_at = loop.time()
            while loop.time() < deadline:
                lines = []
                for _ in range(int(ticks_per_s * interval)):
                    sym = _SYMBOLS[seq % len(_SYMBOLS)]
                    marks[sym] = round(marks[sym] * (1 + rng.uniform(-0.0005, 0.0005)), 6)
                    lines.append(json.dumps({"type": "price_tick", "symbol": sym, "price": marks[sym],
                                             "ts_ms": ts + seq}).encode())
                    seq += 1
                for _ in range(int(fills_per_s * interval)):
                    sym = rng.choice(_SYMBOLS)
                    size = rng.choice([0.5, 1.0]) * (1 if marks[sym] > 100 else 1000)
                    lines.append(json.dumps({
                        "type": "fill", "model_id": rng.choice(models), "symbol": sym,
                        "side": rng.choice(["buy", "sell"]), "price": marks[sym], "size": size,
                        "fee_usd": round(marks[sym] * size * 0.00045, 6), "ts_ms": ts + seq, "oid": 50_000_000 + seq,
                        "tid": 60_000_000 + seq, "crossed": True}).encode())
                    seq += 1
                report = await service.ingest_lines(lines, source="bench")
                if report.rejected:
                    raise SystemExit(f"ingest load rejected lines: {report.summary()}")
                if followup:
                    await refresh_after_ingest(rt, report)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - loop.time()))

    asyncio.run(run())


def measure_latency(args: argparse.Namespace, api: str, manifest: Path, env: dict[str, str], tmp: Path) -> dict:
    """wrk at ``args.rate`` req/s over every endpoint while the ingest load runs in another process."""
    paths = [f"/api/{name}" for name in ("leaderboard", "trades", "crypto-prices", "positions", "account-totals",
                                          "since-inception-values", "analytics", "conversations")]
    delay_ms = max(0.0, args.rate_connections / args.rate * 1000 - 0.5)  # ~0.5 ms per answer included
    script = paced_script(tmp, paths, delay_ms)
    load = subprocess.Popen([sys.executable, __file__, "--ingest-load", str(manifest),
                             "--load-seconds", str(args.rate_duration + 4), "--ticks-per-s", str(args.ticks_per_s),
                             "--fills-per-s", str(args.fills_per_s),
                             *(["--ingest-followup"] if args.ingest_followup else [])], env=env, cwd=tmp, stdout=subprocess.DEVNULL)
    try:
        time.sleep(2)  # the load is running
        if load.poll() is not None:
            raise SystemExit(f"the ingest load exited with {load.returncode}")
        result = run_wrk(api + paths[0], args.rate_duration, args.rate_connections, script)
    finally:
        load.wait(60)
    if load.returncode != 0:
        raise SystemExit(f"the ingest load failed ({load.returncode})")
    result["rebuilds"] = rebuilds(api)
    return result


def rebuilds(api: str) -> dict[str, tuple[int, float]]:
    """Per endpoint, the rebuilds from Postgres the server made and their mean seconds (its /metrics)."""
    sums: dict[str, list[float]] = {}
    for line in fetch(api + "/metrics").decode().splitlines():
        m = re.match(r'nof0_cache_fill_seconds_(count|sum)\{key="([^"]+)"\} ([\d.e+-]+)', line)
        if m:
            sums.setdefault(m.group(2), [0.0, 0.0])[m.group(1) == "sum"] = float(m.group(3))
    return {k: (int(c), s / c if c else 0.0) for k, (c, s) in sorted(sums.items())}


class BenchServers:
    """The servers, a fresh seeded database and a Redis prefix for one benchmark; removed on exit.

    ``postgres``/``redis`` name the machine's servers; empty ones start embedded servers in ``tmp``."""

    def __init__(self, postgres: str, redis_url: str, tmp: Path) -> None:
        self.admin_dsn, self.redis_url, self.tmp = postgres, redis_url, tmp
        self.embedded: list = []
        self.prefix = f"bench{uuid.uuid4().hex[:8]}"
        self.db_name = f"nof0_bench_{uuid.uuid4().hex[:10]}"
        self.dsn = ""
        self.trades = 0

    def __enter__(self) -> "BenchServers":
        self.admin_dsn, self.redis_url, self.dsn, self.trades = seeded_database(
            self.admin_dsn, self.redis_url, self.db_name, self.embedded, self.tmp)
        return self

    def serve(self, port: int) -> tuple[subprocess.Popen, Path, dict[str, str]]:
        """``nof0 serve`` on ``port``, ready; returns the process, its manifest and its environment."""
        manifest = write_config(self.tmp, self.prefix, port)
        env = {**os.environ, "NOF0_POSTGRES_DSN": self.dsn, "NOF0_REDIS_URL": self.redis_url}
        nof0 = Path(sys.executable).parent / "nof0"  # the console script of this venv
        proc = subprocess.Popen([str(nof0), "--config", str(manifest), "serve"], env=env, cwd=self.tmp,
                                stdout=subprocess.DEVNULL)
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        except BaseException:
            stop_processes([proc])
            raise
        return proc, manifest, env

    def __exit__(self, *exc: object) -> None:
        remove_bench_data(self.admin_dsn, self.db_name, self.redis_url, self.prefix, self.embedded, self.tmp)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5,
                    help="interleaved nof0/nginx pairs per endpoint; the median pair ratio is reported")
    ap.add_argument("--rate", type=int, default=1000, help="requests/s of the latency phase")
    ap.add_argument("--rate-connections", type=int, default=20)
    ap.add_argument("--rate-duration", type=int, default=20, help="seconds of the latency phase")
    ap.add_argument("--ticks-per-s", type=int, default=2000, help="ingest load of the latency phase")
    ap.add_argument("--fills-per-s", type=int, default=20, help="ingest load of the latency phase")
    ap.add_argument("--ingest-followup", action="store_true",
                    help="latency phase: each ingest batch followed by what a one-off `nof0 ingest` runs after a load")
    ap.add_argument("--only", choices=("throughput", "latency"),
                    help="run one phase: the nginx rounds or the latency phase with the ingest")
    ap.add_argument("--postgres", default=os.environ.get("NOF0_POSTGRES_DSN", ""))
    ap.add_argument("--redis", default=os.environ.get("NOF0_REDIS_URL", ""))
    ap.add_argument("--ingest-load", type=Path, help=argparse.SUPPRESS)  # the latency phase's ingest process
    ap.add_argument("--load-seconds", type=float, default=20, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ingest_load:
        ingest_load(args.ingest_load, args.load_seconds, args.ticks_per_s, args.fills_per_s, args.ingest_followup)
        return 0
    need_tools()

    tmp = Path(tempfile.mkdtemp(prefix="nof0b-", dir="/tmp"))
    tmp.chmod(0o755)  # nginx workers run as an unprivileged user when started by root
    procs: list[subprocess.Popen] = []
    try:
        with BenchServers(args.postgres, args.redis, tmp) as servers:
            try:
                return _run(args, servers, tmp, procs)
            finally:
                stop_processes(procs)  # before the database is dropped
    finally:
        stop_processes(procs)
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, servers: BenchServers, tmp: Path, procs: list[subprocess.Popen]) -> int:
    api_port = free_port()
    proc, manifest, env = servers.serve(api_port)
    procs.append(proc)
    api = f"http://127.0.0.1:{api_port}"
    goals: list[tuple[str, str, bool]] = []
    if args.only != "latency":
        goals += throughput_rounds(args, api, servers.trades, tmp, procs)
    if args.only != "throughput":
        paced = measure_latency(args, api, manifest, env, tmp)
        print(f"latency: {paced['rps']:.0f} req/s over the 8 endpoints ({args.rate_connections} connections) with an"
              f" ingest of {args.ticks_per_s} ticks/s + {args.fills_per_s} fills/s running:"
              f" p50 {paced['p50_ms']:.2f} ms, p99 {paced['p99_ms']:.2f} ms")
        print("rebuilds behind it (whole server run): " + ", ".join(
            f"{k} {n} x {mean * 1000:.1f} ms" for k, (n, mean) in paced["rebuilds"].items()))
        goals.append((f"p99 {paced['p99_ms']:.2f} ms at {paced['rps']:.0f} req/s with an ingest running", "< 10 ms",
                      paced["p99_ms"] < 10 and paced["rps"] >= 0.9 * args.rate))
    for what, goal, met in goals:
        print(f"goal {goal}: {what}: {'met' if met else 'missed'}")
    return 0


def throughput_rounds(args: argparse.Namespace, api: str, trades: int, tmp: Path, procs: list[subprocess.Popen]
                      ) -> list[tuple[str, str, bool]]:
    """nof0 and one nginx worker on the same bytes, in interleaved pairs (nof0 first in odd rounds, nginx
    first in even ones); each pair gives a ratio and the median ratio is reported, so a burst of load from
    elsewhere on the machine moves one pair, not the figure."""
    nginx_port = free_port()
    root = tmp / "static"
    sizes = {}
    for path in ENDPOINTS:
        body = fetch(api + path)
        sizes[path] = len(body)
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_bytes(body)
    procs.append(start_nginx(root, nginx_port, tmp))
    static = f"http://127.0.0.1:{nginx_port}"
    wait_ready(f"{static}/api/leaderboard", procs[-1])
    for path in ENDPOINTS:
        assert fetch(static + path) == fetch(api + path), f"{path}: nginx and nof0 bytes differ"

    print(f"wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} interleaved pairs per endpoint (median"
          f" ratio), keep-alive, identity bodies; {trades} trades loaded; {os.cpu_count()} CPUs;"
          f" one nof0 serve process vs one nginx worker")
    print(f"{'endpoint':<18}{'bytes':>8}  {'round':>5}{'nof0 req/s':>12}{'p99 ms':>8}{'nginx req/s':>13}{'p99 ms':>8}"
          f"{'ratio':>7}")
    ratios = {}
    for path in ENDPOINTS:
        pairs = []
        for i in range(args.rounds):
            order = [api, static] if i % 2 == 0 else [static, api]
            got = {base: run_wrk(base + path, args.duration, args.connections) for base in order}
            ours, theirs = got[api], got[static]
            pairs.append(ours["rps"] / theirs["rps"])
            print(f"{path:<18}{sizes[path]:>8}  {i + 1:>5}{ours['rps']:>12.0f}{ours['p99_ms']:>8.2f}"
                  f"{theirs['rps']:>13.0f}{theirs['p99_ms']:>8.2f}{pairs[-1]:>7.2f}", flush=True)
        ratios[path] = statistics.median(pairs)
        print(f"ratio nof0/nginx {path}: {ratios[path]:.2f} (median of {', '.join(f'{r:.2f}' for r in pairs)})")
    return [(f"{ratios['/api/leaderboard']:.2f} of nginx on /api/leaderboard", ">= 0.5",
             ratios["/api/leaderboard"] >= 0.5),
            (f"{ratios['/api/trades']:.2f} of nginx on /api/trades", ">= 0.8", ratios["/api/trades"] >= 0.8)]


if __name__ == "__main__":
    sys.exit(main())
