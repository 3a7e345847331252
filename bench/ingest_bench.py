"""Ingest throughput: ticks/s and fills/s through the full pipeline, beside a raw binary COPY of the
same rows into the same table, measured in the same run (the ratio is what to compare across machines).

"Full pipeline" = JSON Lines decoded and validated, references checked, one transaction per batch
(ticks: COPY to a staging table, insert with the natural-key check, latest-price upsert; fills: the
fills ledger, the fill book's trades, positions and equity snapshots), then Redis after commit
(latest prices and the crypto_prices map; positions hashes, recent trades, the trades stream).

    python bench/ingest_bench.py                     # embedded PostgreSQL + Redis in a temporary folder
    NOF0_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/postgres \\
    NOF0_REDIS_URL=redis://127.0.0.1:6379/0 python bench/ingest_bench.py   # the machine's servers

The COPY and the pipeline run in turns, ``--rounds`` times (each round its own new ticks and fills, later
than the round before, as a feed's would be): the machine is shared, so each round's ratio compares
runs made seconds apart, and the median round is reported.

With external servers the run uses a scratch database (created and dropped) and its own Redis key
prefix (deleted afterwards); nothing else on the servers is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from scratch import scratch_servers  # noqa: E402
from nof0.ingest.service import IngestService  # noqa: E402
from nof0.runtime import Servers, open_runtime  # noqa: E402

SYMBOLS = ["BTC", "ETH", "SOL", "BNB", "DOGE", "XRP"]
MODELS = ["gpt-5", "claude-sonnet-4-5", "grok-4", "qwen3-max", "deepseek-chat-v3.1"]
T0 = 1_761_400_000_000


def tick_lines(n: int, rng: random.Random, start: int = 0) -> tuple[list[bytes], list[tuple]]:
    """``n`` ticks from the ``start``-th (6 symbols, one price each every 10 ms)."""
    prices = {"BTC": 111000.0, "ETH": 3900.0, "SOL": 190.0, "BNB": 1100.0, "DOGE": 0.195, "XRP": 2.6}
    lines, rows = [], []
    for i in range(start, start + n):
        s = SYMBOLS[i % 6]
        prices[s] = round(prices[s] * (1 + rng.uniform(-0.001, 0.001)), 6)
        ts = T0 + (i // 6) * 10
        lines.append(json.dumps({"type": "price_tick", "symbol": s, "price": prices[s], "ts_ms": ts}).encode())
        rows.append((s, prices[s], ts, "hyperliquid"))
    return lines, rows


def fill_lines(n: int, rng: random.Random, start: int = 0) -> tuple[list[bytes], list[tuple]]:
    """``n`` fills from the ``start``-th (5 models, 20 ms apart, their oid and tid counting up)."""
    marks = {"BTC": 111000.0, "ETH": 3900.0, "SOL": 190.0, "BNB": 1100.0, "DOGE": 0.195, "XRP": 2.6}
    lines, rows = [], []
    for i in range(start, start + n):
        m, s = MODELS[i % 5], rng.choice(SYMBOLS)
        marks[s] = round(marks[s] * (1 + rng.uniform(-0.002, 0.002)), 6)
        size = rng.choice([0.5, 1.0, 2.0]) * (1 if marks[s] > 100 else 1000)
        fill = {"type": "fill", "model_id": m, "symbol": s, "side": rng.choice(["buy", "sell"]), "price": marks[s],
                "size": size, "fee_usd": round(marks[s] * size * 0.00045, 6), "ts_ms": T0 + i * 20,
                "oid": 10_000_000 + i, "tid": 90_000_000 + i, "crossed": True}
        lines.append(json.dumps(fill).encode())
        rows.append((m, fill["tid"], fill["oid"], s, fill["side"], fill["price"], size, fill["fee_usd"], fill["ts_ms"]))
    return lines, rows


def raw_copy(dsn: str, table: str, columns: str, types: list[str], rows: list[tuple]) -> float:
    """Seconds for one binary COPY of ``rows`` into an emptied ``table`` (the baseline)."""
    with psycopg.connect(dsn) as conn:
        conn.execute(f"TRUNCATE {table}")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute(f"TRUNCATE {table}")
        conn.commit()
    return elapsed


async def through_pipeline(config, servers: Servers, lines: list[bytes], registrations: list[bytes]) -> float:
    async with open_runtime(config, servers) as rt:
        service = IngestService(rt)
        await service.ingest_lines(registrations, source="bench")
        started = time.perf_counter()
        report = await service.ingest_lines(lines, source="bench")
        elapsed = time.perf_counter() - started
    if report.rejected or report.accepted != len(lines):
        raise SystemExit(f"bench input was not fully accepted: {report.summary()}")
    return elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ticks", type=int, default=200_000)
    p.add_argument("--fills", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=3, help="COPY and pipeline in turns this many times (median)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    with scratch_servers() as run:
        config, servers, dsn = run.config, run.servers, run.dsn
        rng = random.Random(args.seed)
        registrations = [json.dumps({"type": "model", "id": m}).encode() for m in MODELS]
        registrations += [json.dumps({"type": "symbol", "symbol": s}).encode() for s in SYMBOLS]
        timings: dict[str, list[tuple[float, float]]] = {"ticks": [], "fills": []}  # (COPY s, pipeline s)
        for n in range(args.rounds):
            ticks, tick_rows = tick_lines(args.ticks, rng, n * args.ticks)
            copy_s = raw_copy(dsn, "price_ticks", "symbol, price, ts_ms, source", ["text", "float8", "int8", "text"],
                              tick_rows)
            timings["ticks"].append((copy_s, asyncio.run(through_pipeline(config, servers, ticks, registrations))))
            fills, fill_rows = fill_lines(args.fills, rng, n * args.fills)
            copy_s = raw_copy(dsn, "fills", "model_id, tid, oid, symbol, side, price, size, fee_usd, ts_ms",
                              ["text", "int8", "int8", "text", "text", "float8", "float8", "float8", "int8"],
                              fill_rows)
            timings["fills"].append((copy_s, asyncio.run(through_pipeline(config, servers, fills, registrations))))

        print(f"nof0 ingest benchmark on {run.where}: {args.ticks} ticks, {args.fills} fills, "
              f"batch {config.root.ingest.tick_batch_size}, median of {args.rounds} rounds")
        medians = {}
        for what, count, table in (("ticks", args.ticks, "price_ticks"), ("fills", args.fills, "fills")):
            copy_s, pipe_s = sorted(timings[what], key=lambda t: t[0] / t[1])[len(timings[what]) // 2]  # median
            medians[what] = ratio = copy_s / pipe_s
            rounds = " ".join(f"{c / t:.3f}" for c, t in timings[what])
            print(f"  raw binary COPY of the {what} into {table:<11}      {count / copy_s:>12,.0f} rows/s")
            print(f"  {what} through the full pipeline (JSON Lines)      {count / pipe_s:>12,.0f} {what}/s"
                  f"  ratio to COPY {ratio:.3f} (rounds: {rounds})")
        for what, goal in (("ticks", 0.5), ("fills", 0.15)):
            print(f"goal {what} through the pipeline >= {goal} of raw binary COPY: {medians[what]:.3f}:"
                  f" {'met' if medians[what] >= goal else 'missed'}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
