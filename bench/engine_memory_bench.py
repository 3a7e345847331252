"""Resident memory of ``nof0 run`` with 500 sim traders, beside the same process with 1 trader.

    python bench/engine_memory_bench.py                        # embedded PostgreSQL + Redis
    NOF0_POSTGRES_DSN=... NOF0_REDIS_URL=... python bench/engine_memory_bench.py --traders 500 --cycles 3

Each run writes a manager.yaml of N traders (``strategy:momentum`` / ``strategy:mean_reversion``, the
seeded sim market, the sim exchange, a decision every 5 s) into a copy of etc/, starts ``nof0 run``
(API, engine and jobs in one process, as deployed) on a free port, waits until every trader has
journaled ``--cycles`` decision cycles (counted in ``decision_cycles``), then reads the process's
resident set (``VmRSS``) and its peak (``VmHWM``) from /proc. The baseline is the same process with one
trader, measured in the same run: the difference over N - 1 is what one more trader costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from scratch import scratch_servers  # noqa: E402

GOAL_MB = 500.0


def manager_yaml(n: int, interval_s: int) -> str:
    lines = ["manager:", "  total_equity_usd: 10000", "  allocation_strategy: fixed", "traders:"]
    for i in range(n):
        strategy = "momentum" if i % 2 == 0 else "mean_reversion"
        lines += [
            f"  - id: mem_{i}", f"    name: Memory {i}", "    exchange_provider: sim", "    market_provider: sim",
            f"    model: strategy:{strategy}", "    prompt_template: prompts/aggressive_short.tmpl",
            f"    decision_interval: {interval_s}s", "    starting_capital_usd: 10000",
            "    strategy_params: {leverage: 5, max_hold: 30s}",
            "    risk_params: {max_positions: 3, max_position_size_usd: 500, max_margin_usage_pct: 60,"
            " major_coin_leverage: 10, altcoin_leverage: 5, min_risk_reward_ratio: 1.5, min_confidence: 0.6,"
            " min_liquidity_usd: 0}",
            "    cooldown: {after_close: 10s}",
        ]
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of the process, MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def cycles_done(dsn: str, n: int) -> tuple[int, int]:
    """(traders with at least one cycle, the fewest cycles of any of the n traders)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT model_id, count(*) FROM decision_cycles WHERE model_id LIKE 'mem\\_%%'"
                            " GROUP BY model_id").fetchall()
    counts = [c for _, c in rows]
    return len(counts), (min(counts) if len(counts) == n else 0)


def measure(scratch, n: int, cycles: int, interval_s: int, timeout_s: float) -> dict[str, float]:
    etc = scratch.tmp / f"etc_{n}"
    shutil.rmtree(etc, ignore_errors=True)
    shutil.copytree(REPO / "etc", etc)
    manifest = etc / "nof0.yaml"
    manifest.write_text(manifest.read_text().replace("prefix: nof0", f"prefix: {scratch.prefix}"))
    (etc / "manager.yaml").write_text(manager_yaml(n, interval_s))
    with psycopg.connect(scratch.dsn, autocommit=True) as conn:  # each run starts from an empty store
        conn.execute("TRUNCATE decision_cycles, conversations, conversation_messages, fills, fill_books, trades,"
                     " positions, position_closes, account_equity_snapshots, sim_orders, sim_balances,"
                     " trader_state, llm_calls CASCADE")
    env = {**os.environ, "NOF0_POSTGRES_DSN": scratch.dsn, "NOF0_REDIS_URL": scratch.servers.redis_url,
           "NOF0_LOG_LEVEL": "warning"}
    log = open(scratch.tmp / f"run_{n}.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "nof0"), "--config", str(manifest), "run",
                             "--host", "127.0.0.1", "--port", str(free_port())], env=env, stdout=log, stderr=log)
    started = time.monotonic()
    try:
        samples: list[float] = []
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"nof0 run ({n} traders) exited with {proc.returncode}; see {log.name}")
            if time.monotonic() - started > timeout_s:
                raise SystemExit(f"nof0 run ({n} traders): {cycles} cycles each not reached in {timeout_s:.0f} s")
            samples.append(proc_status(proc.pid)["VmRSS"])
            active, fewest = cycles_done(scratch.dsn, n)
            if fewest >= cycles:
                break
            time.sleep(0.5)
        status = proc_status(proc.pid)
        return {"n": n, "rss": status["VmRSS"], "hwm": status["VmHWM"], "s": time.monotonic() - started,
                "max_sampled": max(samples + [status["VmRSS"]])}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--traders", type=int, default=500)
    p.add_argument("--cycles", type=int, default=3, help="decision cycles every trader completes first")
    p.add_argument("--interval", type=int, default=5, help="decision interval, seconds")
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args()
    with scratch_servers() as scratch:
        print(f"nof0 run resident memory on {scratch.where}: sim traders on the sim market and exchange, "
              f"RSS after {args.cycles} cycles of every trader")
        base = measure(scratch, 1, args.cycles, args.interval, args.timeout)
        big = measure(scratch, args.traders, args.cycles, args.interval, args.timeout)
    per = (big["rss"] - base["rss"]) / max(1, args.traders - 1)
    for r in (base, big):
        print(f"  {r['n']:>5} traders: RSS {r['rss']:7.1f} MB, peak {r['hwm']:7.1f} MB, after {r['s']:5.1f} s")
    print(f"  each trader beyond the first: {per * 1024:.0f} KB")
    print(f"ratio: RSS at {args.traders} traders {big['rss'] / base['rss']:.2f}x the 1-trader process;"
          f" {big['rss'] / GOAL_MB:.2f} of the {GOAL_MB:.0f} MB goal (peak {big['hwm'] / GOAL_MB:.2f})")
    print(f"goal nof0 run with {args.traders} sim traders under {GOAL_MB:.0f} MB resident:"
          f" {'met' if big['hwm'] < GOAL_MB else 'missed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
