"""Feed latency: from an allMids frame leaving the (fake) Hyperliquid WebSocket server to its price in
Redis, at a steady frame rate, beside a baseline measured in the same run.

    python bench/feed_bench.py                      # embedded PostgreSQL + Redis in a temporary folder
    NOF0_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/postgres \\
    NOF0_REDIS_URL=redis://127.0.0.1:6379/0 python bench/feed_bench.py   # the machine's servers
    # --rate N frames/s (default 1000), --seconds S (default 5)

*Feed* = ``nof0 feed --provider hyperliquid`` in its own process, its ``base_url`` pointed at the local fake
(tests/fakes/hyperliquid_market.py) through ``NOF0_HYPERLIQUID_BASE_URL``: each frame is decoded, checked,
kept to the configured symbols, applied to the market state, batched and written through IngestService
(COPY into price_ticks, price_latest moved, then nof0:price:latest:* and crypto_prices published).
*Baseline* = a bare ``websockets`` client in its own process that SETs the newest frame's BTC price, as the
same JSON, into Redis directly (frames arriving during a SET coalesce into the next one, as the feed's
batches do): the WebSocket and Redis hops without the store.

Each frame carries the six symbols of etc/market.yaml; BTC's price encodes the frame's sequence number.
The bench process sends the frames and polls ``GET`` on the BTC key (about every 0.5 ms); a frame's latency
is from just before its send to the first poll that shows its price or a later one (a batch publishes only
its newest price, which stands for the ticks before it). With external servers the run uses a scratch
database (created and dropped) and its own Redis key prefix (deleted afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from scratch import scratch_servers  # noqa: E402
from tests.fakes.hyperliquid_market import FakeHyperliquid  # noqa: E402

OTHERS = {"ETH": "3929.85", "SOL": "193.235", "BNB": "1117.95", "DOGE": "0.195255", "XRP": "2.60815"}
GOAL_P99_MS = 50.0

BASELINE_CLIENT = r"""
import asyncio, json, sys
import redis.asyncio as aioredis
from websockets.asyncio.client import connect

async def main(url, redis_url, key):
    r = aioredis.Redis.from_url(redis_url)
    latest, fresh = [None], asyncio.Event()

    async def write():  # the newest price, as soon as the previous SET is done (frames meanwhile coalesce)
        while True:
            await fresh.wait()
            fresh.clear()
            await r.set(key, json.dumps({"symbol": "BTC", "price": latest[0], "timestamp": 0}), px=10_000)

    writer = asyncio.create_task(write())
    async with connect(url, ping_interval=None) as ws:
        await ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "allMids"}}))
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("channel") == "allMids":
                latest[0] = float(frame["data"]["mids"]["BTC"])
                fresh.set()

asyncio.run(main(*sys.argv[1:]))
"""


def btc_price(seq: int) -> str:
    return f"{100_000 + seq * 0.5:.1f}"


def seq_of(price: float) -> int:
    return round((price - 100_000) / 0.5)


async def measure(fake: FakeHyperliquid, r: aioredis.Redis, key: str, first_seq: int, frames: int, rate: float
                  ) -> list[float]:
    """Send ``frames`` frames at ``rate``/s from ``first_seq`` on; the latency of each, in ms."""
    sent: dict[int, float] = {}
    latencies: dict[int, float] = {}
    done = asyncio.Event()
    last = first_seq + frames - 1

    async def poll() -> None:
        seen = first_seq - 1
        while seen < last:
            raw = await r.get(key)
            now = time.perf_counter()
            if raw is not None:
                s = seq_of(json.loads(raw)["price"])
                for k in range(seen + 1, s + 1):
                    if k in sent:
                        latencies[k] = (now - sent[k]) * 1000
                seen = max(seen, s)
            await asyncio.sleep(0.0005)
        done.set()

    poller = asyncio.create_task(poll())
    start = time.perf_counter()
    for i in range(frames):
        target = start + i / rate
        if (wait := target - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        seq = first_seq + i
        sent[seq] = await fake.push_mids({"BTC": btc_price(seq), **OTHERS})
    try:
        await asyncio.wait_for(done.wait(), 60)
    finally:
        poller.cancel()
    return [latencies[k] for k in sorted(latencies)]


async def run_client(fake: FakeHyperliquid, r: aioredis.Redis, key: str, argv: list[str], env: dict[str, str],
                     args: argparse.Namespace, label: str) -> list[float]:
    before = fake.subscriptions
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        await fake.wait_for(lambda: fake.subscriptions > before, timeout=120)
        warm = await measure(fake, r, key, 0, 200, args.rate)  # connections, caches, first batches
        if len(warm) < 200:
            raise SystemExit(f"{label}: the warm-up frames did not all reach Redis")
        return await measure(fake, r, key, 1000, int(args.rate * args.seconds), args.rate)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


async def bench(args: argparse.Namespace, dsn: str, redis_url: str, prefix: str, etc: Path) -> int:
    r = aioredis.Redis.from_url(redis_url)
    env = {**os.environ, "NOF0_POSTGRES_DSN": dsn, "NOF0_REDIS_URL": redis_url, "NOF0_LOG_LEVEL": "warning",
           # the feed process runs this checkout's code, as this script does, whichever checkout the venv installed
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    try:
        async with FakeHyperliquid() as fake:
            env["NOF0_HYPERLIQUID_BASE_URL"] = fake.base_url
            nof0 = [str(Path(sys.executable).parent / "nof0"), "--config", str(etc / "nof0.yaml"), "feed",
                    "--provider", "hyperliquid"]
            feed = await run_client(fake, r, f"{prefix}:price:latest:BTC", nof0, env, args, "feed")
            base_key = f"{prefix}:baseline:BTC"
            ws = f"ws://127.0.0.1:{fake.port}/ws"
            base = await run_client(fake, r, base_key, [sys.executable, "-c", BASELINE_CLIENT, ws, redis_url, base_key],
                                    env, args, "baseline")
    finally:
        await r.aclose()
    frames = int(args.rate * args.seconds)
    print(f"nof0 feed latency benchmark: {frames} allMids frames (6 symbols each) at {args.rate:,.0f} frames/s, "
          f"frame sent -> price in Redis")
    rows = []
    for label, values in (("baseline: bare websockets client -> Redis SET", base),
                          ("nof0 feed -> IngestService -> Postgres -> Redis", feed)):
        if len(values) < frames:
            raise SystemExit(f"{label}: only {len(values)} of {frames} frames reached Redis")
        rows.append((label, statistics.median(values), quantile(values, 0.99), max(values)))
    for label, p50, p99, worst in rows:
        print(f"  {label:<50} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  max {worst:7.2f} ms")
    (_, b50, b99, _), (_, f50, f99, _) = rows
    print(f"  ratio feed / baseline: p50 {f50 / b50:.1f}x, p99 {f99 / b99:.1f}x")
    print(f"goal p99 < {GOAL_P99_MS:.0f} ms {'met' if f99 < GOAL_P99_MS else 'missed'}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=1000.0, help="frames per second")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to send at that rate")
    args = p.parse_args()

    with scratch_servers() as run:
        etc = run.tmp / "etc"
        shutil.copytree(REPO / "etc", etc)
        manifest = etc / "nof0.yaml"
        manifest.write_text(manifest.read_text().replace("prefix: nof0", f"prefix: {run.prefix}"))
        return asyncio.run(bench(args, run.dsn, run.servers.redis_url, run.prefix, etc))

if __name__ == "__main__":
    sys.exit(main())
