"""Analytics job benchmark: 100 models x 10,000 generated trades (issue 5).

Generates the trades with one binary COPY (and one COPY of equity snapshots, one per 10 trades, which the
views and the leaderboard read), then times, in the same run and on the same rows:

* the baseline: one SQL aggregate pass over the trades (count, sums, averages and sample stds of
  net/gross pnl, fees, notional and holding time, per model), the cheapest way to read every row once;
* the analytics job (``run_analytics``): the trade statistics computed by Postgres (one aggregate
  pass into cells, medians and the last trade per model), batched reads of the other fact tables, the
  ModelAnalytics tables per model, the ``model_analytics`` upsert, the view refresh (run beside the
  statistics, so its time overlaps the read's) and the Redis publish. Goal (issue 13): at most 3x the SQL pass.

Prints both and the ratio. Embedded servers by default; the machine's when NOF0_POSTGRES_DSN and
NOF0_REDIS_URL are set. Works in its own database and Redis prefix and removes both afterwards.

    .venv/bin/python bench/analytics_bench.py [--models 100] [--trades 10000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from nof0.analytics.job import run_analytics  # noqa: E402
from nof0.config import load_config  # noqa: E402
from nof0.db.dsn import with_database  # noqa: E402
from nof0.db.migrate import migrate  # noqa: E402
from nof0.obs.logging import configure_logging  # noqa: E402
from nof0.runtime import Servers, open_runtime, resolve_servers  # noqa: E402

T0_MS = 1_760_738_400_000
SYMBOLS = ("BTC", "ETH", "SOL", "BNB", "DOGE", "XRP")
TRADE_COLUMNS = (
    "id", "model_id", "symbol", "side", "trade_type", "quantity", "leverage", "confidence", "entry_price",
    "entry_ts_ms", "exit_price", "exit_ts_ms", "realized_gross_pnl", "realized_net_pnl",
    "total_commission_dollars", "entry_commission_dollars", "exit_commission_dollars",
)
TRADE_TYPES = ("text", "text", "text", "text", "text", "float8", "float8", "float8", "float8",
               "int8", "float8", "int8", "float8", "float8", "float8", "float8", "float8")

BASELINE_SQL = """
SELECT model_id, count(*),
       sum(realized_gross_pnl), avg(realized_gross_pnl), stddev_samp(realized_gross_pnl),
       sum(realized_net_pnl), avg(realized_net_pnl), stddev_samp(realized_net_pnl),
       min(realized_net_pnl), max(realized_net_pnl),
       sum(total_commission_dollars), avg(total_commission_dollars), stddev_samp(total_commission_dollars),
       count(*) FILTER (WHERE realized_net_pnl > 0),
       avg(abs(quantity) * entry_price), stddev_samp(abs(quantity) * entry_price),
       avg((exit_ts_ms - entry_ts_ms) / 60000.0), stddev_samp((exit_ts_ms - entry_ts_ms) / 60000.0),
       count(*) FILTER (WHERE side = 'long')
  FROM trades
 GROUP BY model_id
"""


def generate(dsn: str, models: int, trades: int) -> tuple[float, int]:
    rng = random.Random(5)
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO models (id, display_name) SELECT 'model-' || i, 'Model ' || i"
                " FROM generate_series(0, %s - 1) i",
                (models,),
            )
            cur.execute(
                "INSERT INTO accounts (model_id, starting_capital_usd) SELECT id, 10000 FROM models"
            )
            with cur.copy(f"COPY trades ({', '.join(TRADE_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(TRADE_TYPES)
                for m in range(models):
                    model_id = f"model-{m}"
                    for i in range(trades):
                        side = "long" if rng.random() < 0.5 else "short"
                        qty = rng.uniform(0.01, 3)
                        entry = rng.uniform(10, 5000)
                        entry_ms = T0_MS + i * 60_000
                        fee_in, fee_out = rng.uniform(0.1, 5), rng.uniform(0.1, 5)
                        net = rng.uniform(-400, 400)
                        copy.write_row((
                            f"{model_id}_{i}", model_id, SYMBOLS[i % 6], side, side,
                            qty if side == "long" else -qty, 10.0, 0.6, entry, entry_ms,
                            entry * rng.uniform(0.95, 1.05), entry_ms + rng.randrange(60_000, 7_200_000),
                            net + fee_in + fee_out, net, fee_in + fee_out, fee_in, fee_out,
                        ))
            with cur.copy("COPY account_equity_snapshots (model_id, ts_ms, equity_usd) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(("text", "int8", "float8"))
                for m in range(models):
                    for j in range(trades // 10):
                        copy.write_row((f"model-{m}", T0_MS + j * 600_000, 10_000 + rng.uniform(-2000, 2000)))
            cur.execute("ANALYZE trades; ANALYZE account_equity_snapshots")
    return time.perf_counter() - started, models * trades


def baseline(dsn: str) -> float:
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        rows = conn.execute(BASELINE_SQL).fetchall()
        elapsed = time.perf_counter() - started
    assert rows, "no rows aggregated"
    return elapsed


async def job(config, servers: Servers, expected_models: int):
    async with open_runtime(config, servers) as rt:
        report = await run_analytics(rt)
        assert len(report.computed) == expected_models and not report.failed, report
        assert report.published, report.redis_error
        async for key in rt.redis.scan_iter(match=f"{rt.keys.prefix}:*", count=1000):
            await rt.redis.delete(key)
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--trades", type=int, default=10_000, help="trades per model")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each side; the best is reported")
    args = ap.parse_args()

    # the embedded servers' folder (some 800 MB after a run): ours unless NOF0_DATA_DIR names one, and
    # then removed at the end (/tmp: short enough for the servers' Unix sockets)
    own_data_dir = None if os.environ.get("NOF0_DATA_DIR") else tempfile.mkdtemp(prefix="nof0b-", dir="/tmp")
    if own_data_dir:
        os.environ["NOF0_DATA_DIR"] = own_data_dir
    try:
        return _run(args)
    finally:
        if own_data_dir:
            shutil.rmtree(own_data_dir, ignore_errors=True)
            print(f"data folder {own_data_dir} removed")


def _run(args: argparse.Namespace) -> int:
    config = load_config(REPO / "etc" / "nof0.yaml")
    configure_logging("warning")
    config.root.redis.prefix = f"bench{uuid.uuid4().hex[:8]}"
    servers = resolve_servers(config)
    where = "embedded" if servers.embedded else "machine"
    database = f"nof0_bench_{uuid.uuid4().hex[:8]}"
    admin = servers.postgres_dsn
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        dsn = with_database(admin, database)
        migrate(dsn)
        bench_servers = Servers(dsn, servers.redis_url)
        gen_s, n = generate(dsn, args.models, args.trades)
        print(f"servers: {where}; generated {n:,} trades for {args.models} models in {gen_s:.1f} s (COPY)")

        sql_times = [baseline(dsn) for _ in range(max(1, args.repeat) + 1)]  # +1: the first warms the cache
        best_sql = min(sql_times)
        reports = [asyncio.run(job(config, bench_servers, args.models)) for _ in range(max(1, args.repeat))]
        best = min(reports, key=lambda r: r.total_s)
        print(f"SQL aggregate pass over the trades:  {best_sql:8.3f} s  ({n / best_sql:,.0f} trades/s)")
        print(f"analytics job (run_analytics):       {best.total_s:8.3f} s  ({n / best.total_s:,.0f} trades/s)")
        print(f"  read {best.read_s:.2f} s, compute {best.compute_s:.2f} s, upsert {best.write_s:.2f} s,"
              f" refresh views {best.refresh_s:.2f} s (beside the read), publish {best.publish_s:.2f} s")
        ratio = best.total_s / best_sql
        print(f"ratio job / SQL aggregate: {ratio:.1f}x")
        print(f"goal <= 3x one SQL aggregate pass: {ratio:.1f}x: {'met' if ratio <= 3 else 'missed'}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        servers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
