"""The engine's own cost per decision cycle (everything but the model's reply), p50 and p99, for 1, 50
and 500 traders running a built-in strategy, and whether every cycle started on time.

The cost of a cycle (the goal's figure, ``CycleResult.cost_ms``): from the moment the manager starts it
(after the tick's one pause read) to its last journal write committed and published, less the time its
model takes to answer, with every moment of wall time divided evenly among the cycles running at that
moment (``nof0.engine.traders.cycle_cost``). In: the store reads, the account, the context, the prompt,
the contract and guards, both journal writes with their Redis publishes, the orders and their fills.
Out: the model's reply, and the tick's pause read before the cycles start. Summed over a tick, the costs
are the wall time of the tick's cycles, so the mean cost is the tick's wall time per cycle; a cycle
alone (1 trader) costs its wall time. Its *latency* (wall time less the model, ``engine_ms``) is
printed beside it: at 500 traders it is mostly the other cycles of the tick, all due at the same instant.

Each trader runs ``strategy:momentum`` or ``strategy:mean_reversion`` on 6 symbols every 30 s of
simulated time, on the sim exchange: a cycle reads the trader's positions and recent trades from
Postgres, asks its exchange for the account, builds the context (candles and indicators shared per symbol), renders the
prompt, gets the strategy's reply, parses and guards it, writes the journal through IngestService
(cycle, 3 messages, trader state) and places the orders (fills through the fill pipeline).

"On time": every tick's cycles (all traders due at that instant) finish within the decision interval,
so the next tick starts when it is due. The baseline, measured in the same run, is the strategy's
decision alone on the same context (what any cycle must at least compute): the ratio says how much
the journal, the store and the exchange cost beside it.

    python bench/cycle_bench.py                 # embedded PostgreSQL + Redis in a temporary folder
    NOF0_POSTGRES_DSN=... NOF0_REDIS_URL=... python bench/cycle_bench.py --traders 1 50 500
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import random
import statistics
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from scratch import scratch_servers  # noqa: E402
from nof0.config import RiskParams, TraderConfig  # noqa: E402
from nof0.engine.exchange.sim.exchange import SimExchange  # noqa: E402
from nof0.engine.market.provider import AssetContext, AssetInfo, Candle, MarketSnapshot  # noqa: E402
from nof0.engine.market.state import MarketState  # noqa: E402
from nof0.engine.traders.manager import Manager  # noqa: E402
from nof0.ingest.service import IngestService  # noqa: E402
from nof0.kernel.clock import FixedClock  # noqa: E402
from nof0.kernel.events import SymbolEvent  # noqa: E402
from nof0.runtime import Servers, open_runtime  # noqa: E402

SYMBOLS = {"BTC": 111_000.0, "ETH": 3_900.0, "SOL": 190.0, "BNB": 1_100.0, "DOGE": 0.195, "XRP": 2.6}
T0 = 1_761_400_800_000
INTERVAL_S = 30


def candle_source(rng: random.Random):
    paths: dict[tuple[str, str], dict[int, float]] = {}

    async def candles(symbol: str, interval: str, start: int, end: int) -> list[Candle]:
        step = 180_000 if interval == "3m" else 14_400_000
        path = paths.setdefault((symbol, interval), {})
        out, price = [], SYMBOLS[symbol]
        for t in range(start - start % step, end, step):
            if t not in path:
                path[t] = price * math.exp(0.004 * math.sin(t / step / 7) + rng.gauss(0, 0.002))
            c = path[t]
            out.append(Candle(t, t + step - 1, symbol, interval, c, c * 1.002, c * 0.998, c, 1.0))
        return out

    return candles


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def run(config, servers: Servers, n: int, ticks: int, rng: random.Random) -> dict:
    clock = FixedClock(T0)
    async with open_runtime(config, servers, clock=clock) as rt:
        rt = dataclasses.replace(rt, clock=clock)
        cfg = rt.config
        cfg.executor.allowed_symbols = list(SYMBOLS)
        cfg.executor.max_concurrent_decisions = 4
        cfg.manager.traders = [TraderConfig(
            id=f"bench_{n}_{i}", name=f"Bench {i}", exchange_provider="sim", market_provider="hyperliquid",
            model="strategy:momentum" if i % 2 == 0 else "strategy:mean_reversion",
            prompt_template="prompts/aggressive_short.tmpl", decision_interval=INTERVAL_S,
            strategy_params={"max_hold": "2m"}, cooldown={"after_close": "1m"},
            risk_params=RiskParams(max_positions=3, max_position_size_usd=500, max_margin_usage_pct=80,
                                   major_coin_leverage=10, altcoin_leverage=5, min_risk_reward_ratio=1.5,
                                   min_confidence=0.6, min_liquidity_usd=0)) for i in range(n)]
        ingest = IngestService(rt, linger_s=0)
        await ingest.ingest([SymbolEvent(symbol=s) for s in SYMBOLS])
        market = MarketState("hyperliquid")
        market.apply_snapshot(MarketSnapshot(T0, {s: AssetInfo(s, 3, 20) for s in SYMBOLS},
                                             {s: AssetContext(0.00001, 1e7, p) for s, p in SYMBOLS.items()}))
        exchange = SimExchange(rt, "sim", cfg.exchange.providers["sim"], {"hyperliquid": market}, ingest=ingest)
        await exchange.start()
        mgr = Manager(rt, exchanges={"sim": exchange}, markets={"hyperliquid": market},
                      candles={"hyperliquid": candle_source(rng)}, ingest=ingest, run_id="bench")
        await mgr.start()
        engine_ms: list[float] = []
        cost_ms: list[float] = []
        tick_s: list[float] = []
        late = 0
        for k in range(ticks):
            clock.value = T0 + k * INTERVAL_S * 1000
            for s in SYMBOLS:
                market.marks[s] *= math.exp(rng.gauss(0, 0.003))
            started = time.perf_counter()
            results = await mgr.run_due()
            elapsed = time.perf_counter() - started
            tick_s.append(elapsed)
            if len(results) != n or elapsed > INTERVAL_S:
                late += 1
            engine_ms += [r.engine_ms for r in results]
            cost_ms += [r.cost_ms for r in results]
        # the baseline: the strategy's decision alone, on a context built once
        tr = next(iter(mgr.traders.values()))
        ctx = await mgr.builder.build(tr.config, tr.exchange, tr.market, tr.limits, cycle_number=1, now_ms=clock.value,
                                      started_ms=T0, cooldowns={}, invocations=0)
        reps = 2000
        t = time.perf_counter()
        for _ in range(reps):
            tr.model.strategy.decide(ctx)
        baseline_ms = (time.perf_counter() - t) * 1000 / reps
        async with rt.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) AS n FROM decision_cycles WHERE model_id LIKE %s", (f"bench_{n}_%",))
            cycles = (await cur.fetchone())["n"]
            cur = await conn.execute("SELECT count(*) AS n FROM fills WHERE model_id LIKE %s", (f"bench_{n}_%",))
            fills = (await cur.fetchone())["n"]
        await exchange.close()
        return {"n": n, "cycles": cycles, "fills": fills, "p50": pct(cost_ms, 0.5),
                "p99": pct(cost_ms, 0.99), "lat_p50": pct(engine_ms, 0.5), "lat_p99": pct(engine_ms, 0.99),
                "tick_max_s": max(tick_s), "tick_p50_s": statistics.median(tick_s),
                "first_tick_s": tick_s[0], "late_ticks": late, "ticks": ticks,
                "baseline_ms": baseline_ms, "mean": statistics.fmean(cost_ms)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--traders", type=int, nargs="+", default=[1, 50, 500])
    p.add_argument("--ticks", type=int, default=8, help="decision intervals simulated per run")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--goal-ms", type=float, default=20.0, help="the goal: cost p99 under this at the most traders")
    args = p.parse_args()
    from nof0.obs.logging import configure_logging

    configure_logging("error", True)
    with scratch_servers() as scratch:
        config, servers = scratch.config, scratch.servers
        print(f"nof0 decision cycle benchmark on {scratch.where}: {args.ticks} intervals of {INTERVAL_S} s (simulated),"
              " built-in strategies, 6 symbols")
        print(f"  {'traders':>7} {'cycles':>7} {'fills':>6} {'cost p50':>8} {'p99 ms':>8} {'mean ms':>8}"
              f" {'latency p50':>11} {'p99 ms':>8} {'tick s: first':>13} {'median':>6} {'max':>6} {'on time':>8}"
              f" {'strategy alone ms':>18} {'ratio p50':>9}")
        rows = []
        for n in args.traders:
            r = asyncio.run(run(config, servers, n, args.ticks, random.Random(args.seed)))
            rows.append(r)
            on_time = "yes" if r["late_ticks"] == 0 else f"{r['late_ticks']} late"
            print(f"  {r['n']:>7} {r['cycles']:>7} {r['fills']:>6} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['mean']:>8.2f}"
                  f" {r['lat_p50']:>11.2f} {r['lat_p99']:>8.2f}"
                  f" {r['first_tick_s']:>13.2f} {r['tick_p50_s']:>6.2f} {r['tick_max_s']:>6.2f} {on_time:>8} {r['baseline_ms']:>18.3f} {r['p50'] / r['baseline_ms']:>9.1f}",
                  flush=True)
        top = max(rows, key=lambda r: r["n"])
        print(f"ratio: cost p99 {top['p99']:.2f} ms at {top['n']} traders = {top['p99'] / args.goal_ms:.2f} of the"
              f" {args.goal_ms:g} ms goal; p50 {top['p50'] / top['baseline_ms']:.0f}x the strategy's decision alone")
        met = top["p99"] < args.goal_ms and top["late_ticks"] == 0
        print(f"goal cycle cost p99 < {args.goal_ms:g} ms at {top['n']} traders (all on time): {'met' if met else 'missed'}")
        return 0

if __name__ == "__main__":
    sys.exit(main())
