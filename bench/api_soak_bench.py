"""API memory soak: one ``nof0 serve`` process under wrk for ``--minutes`` (default 10) with an ingest
running, its resident memory sampled every second; the goal (issue 13) is that it stays flat.

    .venv/bin/python bench/api_soak_bench.py [--minutes 10] [--postgres DSN --redis URL]
    .venv/bin/python bench/api_soak_bench.py --minutes 2      # what ``make bench`` runs

The same database as ``api_bench.py`` (the nof1 trades capture). wrk (one thread, 16 connections, as
fast as the server answers) cycles through every endpoint in identity and gzip form, with
``If-None-Match`` revalidations, parameterised variants (``positions?limit=``, ``account-totals?
lastHourlyMarker=``), per-model analytics and unknown paths, while the ingest load of ``api_bench.py``
(ticks and fills, the jobs after batches) keeps changing the payloads, so old versions must be freed.

Flat means: the median resident memory of the last tenth of the run is at most 5 % above the median
of the tenth that follows the first tenth (the first tenth warms the caches and the allocator up).
The script prints the samples per tenth, the growth, the slope (MB per minute) and ``goal ... met|missed``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_bench as ab  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for {pid}")


def open_fds(pid: int) -> tuple[int, int]:
    """Open file descriptors of ``pid``: all of them (sockets...) and the memfds of large responses
    (``api/wire.py``), which must not pile up as versions change."""
    names = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            names.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed meanwhile
            pass
    return len(names), sum(n.startswith("/memfd:") for n in names)


def soak_script(tmp: Path, etag_of: dict[str, str]) -> tuple[Path, int]:
    requests = []
    for name in ("leaderboard", "trades", "crypto-prices", "positions", "account-totals", "since-inception-values",
                 "analytics", "conversations"):
        path = f"/api/{name}"
        requests += [(path, {}), (path, {"Accept-Encoding": "gzip"})]
        if path in etag_of:
            requests.append((path, {"If-None-Match": etag_of[path]}))
    requests += [(f"/api/positions?limit={k}", {}) for k in (1, 2, 3)]
    requests += [(f"/api/account-totals?lastHourlyMarker={k}", {}) for k in (0, 5, 50)]
    requests += [("/api/analytics/grok-4", {}), ("/api/analytics/gpt-5", {"Accept-Encoding": "gzip"}),
                 ("/api/nothing-here", {}), ("/healthz", {})]
    def lua(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    entries = ", ".join(
        "{" + lua(p) + ", {" + ", ".join(f"[{lua(k)}] = {lua(v)}" for k, v in h.items()) + "}}" for p, h in requests)
    script = tmp / "soak.lua"
    script.write_text(f"""
local reqs = {{{entries}}}
local i = 0
request = function()
  i = i % #reqs + 1
  return wrk.format("GET", reqs[i][1], reqs[i][2])
end
""")
    return script, len(requests)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--ticks-per-s", type=int, default=2000)
    ap.add_argument("--fills-per-s", type=int, default=20)
    ap.add_argument("--postgres", default=os.environ.get("NOF0_POSTGRES_DSN", ""))
    ap.add_argument("--redis", default=os.environ.get("NOF0_REDIS_URL", ""))
    args = ap.parse_args()
    ab.need_tools()
    seconds = max(20, int(args.minutes * 60))

    tmp = Path(tempfile.mkdtemp(prefix="nof0s-", dir="/tmp"))
    procs: list[subprocess.Popen] = []
    try:
        with ab.BenchServers(args.postgres, args.redis, tmp) as servers:
            port = ab.free_port()
            server, manifest, env = servers.serve(port)
            procs.append(server)
            try:
                return _soak(args, seconds, tmp, server, manifest, env, f"http://127.0.0.1:{port}", procs)
            finally:
                ab.stop_processes(procs)  # before the database is dropped
    finally:
        ab.stop_processes(procs)
        shutil.rmtree(tmp, ignore_errors=True)


def _soak(args: argparse.Namespace, seconds: int, tmp: Path, server: subprocess.Popen, manifest: Path,
          env: dict[str, str], api: str, procs: list[subprocess.Popen]) -> int:
    etags = {}
    for path in ("/api/trades", "/api/leaderboard", "/api/crypto-prices"):
        with urllib.request.urlopen(api + path) as r:
            etags[path] = r.headers["etag"]
    script, kinds = soak_script(tmp, etags)
    procs.append(subprocess.Popen(
        [sys.executable, str(Path(ab.__file__)), "--ingest-load", str(manifest), "--load-seconds", str(seconds + 5),
         "--ticks-per-s", str(args.ticks_per_s), "--fills-per-s", str(args.fills_per_s)],
        env=env, cwd=tmp, stdout=subprocess.DEVNULL))
    load = subprocess.Popen(["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "-s", str(script), api],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    procs.append(load)
    started = time.monotonic()
    samples: list[tuple[float, float]] = []
    fds: list[tuple[int, int]] = []
    while load.poll() is None:
        samples.append((time.monotonic() - started, rss_mb(server.pid)))
        fds.append(open_fds(server.pid))
        time.sleep(1)
    out = load.stdout.read() if load.stdout else ""
    rate = next((line.split()[-1] for line in out.splitlines() if line.startswith("Requests/sec")), None)
    if load.returncode != 0 or rate is None:
        raise SystemExit(f"wrk failed ({load.returncode}):\n{out}")
    if server.poll() is not None:
        raise SystemExit(f"the server exited during the soak ({server.returncode})")

    tenth = max(1, len(samples) // 10)
    print(f"soak: {seconds} s of wrk -c{args.connections} over {kinds} kinds of request"
          f" ({rate} req/s) with an ingest of {args.ticks_per_s} ticks/s + {args.fills_per_s} fills/s;"
          f" resident memory of the nof0 serve process, MB, median per tenth:")
    tenths = [statistics.median(r for _, r in samples[i * tenth:(i + 1) * tenth]) for i in range(10)
              if samples[i * tenth:(i + 1) * tenth]]
    print("  " + "  ".join(f"{m:.1f}" for m in tenths))
    base, last = tenths[1], tenths[-1]
    later = samples[tenth:]
    xs, ys = [t / 60 for t, _ in later], [r for _, r in later]
    slope = statistics.linear_regression(xs, ys).slope if len(later) > 2 else 0.0
    growth = last / base - 1
    print(f"  start {samples[0][1]:.1f} MB, max {max(r for _, r in samples):.1f} MB, slope after warm-up"
          f" {slope:+.2f} MB/min")
    print(f"  open file descriptors (of which memfds) per tenth: "
          + "  ".join(f"{fds[min(i * tenth, len(fds) - 1)][0]} ({fds[min(i * tenth, len(fds) - 1)][1]})"
                      for i in range(10)) + f"; at most {max(n for n, _ in fds)} ({max(m for _, m in fds)})")
    print(f"ratio last tenth / second tenth: {last / base:.3f}")
    print(f"goal resident memory flat (<= 5 % growth): {growth * 100:+.1f} %: {'met' if growth <= 0.05 else 'missed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
