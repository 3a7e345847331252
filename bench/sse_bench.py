"""SSE benchmark: do 500 idle ``/api/stream`` subscribers slow the API's other endpoints?

    .venv/bin/python bench/sse_bench.py [--subscribers 500] [--duration 4] [--rounds 5] [--postgres DSN --redis URL]

One ``nof0 serve`` process on the nof1 capture's trades (loaded as ``api_bench.py`` does). wrk measures
``/api/leaderboard`` (hot path) and ``/api/positions?limit=1000`` (through the app) req/s alternately without and with N subscribers connected to ``/api/stream``
(each has read its ``hello``, so the server holds it; none gets a change during the run: they are
idle, as browsers watching a quiet arena). The runs come in interleaved pairs (without first in odd
rounds, with first in even ones), each pair gives a ratio, and the median ratio per endpoint is compared
with the goal (at most 10% slower: ratio >= 0.90), so a burst of load from elsewhere on the shared
machine moves one pair, not the figure. The subscribers run in this process, in a thread of their own.
Exit status 0 whether the goal is met or missed (``goal ... met|missed`` says which); non-zero on errors.

Needs wrk on PATH (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_bench import free_port, remove_bench_data, run_wrk, seeded_database, wait_ready, write_config  # noqa: E402

GOAL = 0.90
# one endpoint answered in the HTTP parser (the hot path), one through the ASGI app (a query parameter)
PATHS = ("/api/leaderboard", "/api/positions?limit=1000")


class Subscribers:
    """N SSE connections held open by an event loop in a background thread."""

    def __init__(self, host: str, port: int, n: int) -> None:
        self.host, self.port, self.n = host, port, n
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: list[asyncio.Task[None]] = []

    def _run(self, coro, timeout: float = 120):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _one(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(f"GET /api/stream HTTP/1.1\r\nHost: {self.host}\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        seen = b""
        while b"event: hello" not in seen:  # the server holds this subscriber now
            chunk = await reader.read(4096)
            if not chunk:
                raise ConnectionError("the stream closed before its hello")
            seen += chunk
        self.writers.append(writer)
        self.tasks.append(asyncio.ensure_future(self._drain(reader)))

    @staticmethod
    async def _drain(reader: asyncio.StreamReader) -> None:
        while await reader.read(4096):  # heartbeats; no changes are announced during the run
            pass

    async def _open(self) -> None:
        for start in range(0, self.n, 50):  # in bursts, as browsers arrive
            await asyncio.gather(*(self._one() for _ in range(min(50, self.n - start))))

    async def _close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            writer.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.writers.clear()
        self.tasks.clear()

    def open(self) -> None:
        self._run(self._open())

    def close(self) -> None:
        self._run(self._close())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subscribers", type=int, default=500)
    ap.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved without/with pairs; the median pair ratio counts")
    ap.add_argument("--postgres", default=os.environ.get("NOF0_POSTGRES_DSN", ""))
    ap.add_argument("--redis", default=os.environ.get("NOF0_REDIS_URL", ""))
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("missing: wrk; install with: apt-get install -y wrk", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="nof0sse-", dir="/tmp"))
    embedded = []
    proc: subprocess.Popen[bytes] | None = None
    subs: Subscribers | None = None
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    admin_dsn, redis_url = args.postgres, args.redis
    db_name = f"nof0_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin_dsn, redis_url, dsn, n = seeded_database(admin_dsn, redis_url, db_name, embedded, tmp)
        port = free_port()
        manifest = write_config(tmp, prefix, port)
        env = {**os.environ, "NOF0_POSTGRES_DSN": dsn, "NOF0_REDIS_URL": redis_url}
        nof0 = Path(sys.executable).parent / "nof0"
        proc = subprocess.Popen([str(nof0), "--config", str(manifest), "serve"], env=env, cwd=tmp,
                                stdout=subprocess.DEVNULL)
        api = f"http://127.0.0.1:{port}"
        wait_ready(f"{api}/readyz", proc)
        for path in PATHS:  # warm: the responses are cached before the first measure
            run_wrk(api + path, 2, args.connections)

        subs = Subscribers("127.0.0.1", port, args.subscribers)
        print(f"wrk -t1 -c{args.connections} -d{args.duration}s x {args.rounds} interleaved pairs (median ratio);"
              f" {n} trades loaded; {os.cpu_count()} CPUs; one nof0 serve process;"
              f" {args.subscribers} idle /api/stream subscribers in the 'with' runs")
        ratios = {}
        for path in PATHS:
            pairs = []
            for i in range(args.rounds):
                got = {}
                for subscribed in ((False, True) if i % 2 == 0 else (True, False)):
                    if subscribed:
                        subs.open()
                    got[subscribed] = run_wrk(api + path, args.duration, args.connections)["rps"]
                    if subscribed:
                        subs.close()
                pairs.append(got[True] / got[False])
                print(f"{path:<28} round {i + 1}: without {got[False]:.0f} / with {got[True]:.0f} req/s:"
                      f" {pairs[-1]:.3f}", flush=True)
            ratios[path] = statistics.median(pairs)
        for path, ratio in ratios.items():
            print(f"ratio with/without {args.subscribers} subscribers {path}: {ratio:.3f}")
        met = all(r >= GOAL for r in ratios.values())
        shown = " / ".join(f"{ratios[p]:.3f}" for p in PATHS)
        print(f"goal ratio >= {GOAL:.2f} with {args.subscribers} idle subscribers ({' / '.join(PATHS)}): {shown}:"
              f" {'met' if met else 'missed'}")
        return 0
    finally:
        if subs is not None:
            subs.stop()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        remove_bench_data(admin_dsn, db_name, redis_url, prefix, embedded, tmp)


if __name__ == "__main__":
    sys.exit(main())
