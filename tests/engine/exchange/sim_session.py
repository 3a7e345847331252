"""A scripted sim exchange session, run as a subprocess by the kill -9 test (``test_sim_kill9.py``).

``python -m tests.engine.exchange.sim_session DSN REDIS_URL PREFIX --from N [--die-after-commits K]``
runs steps N.. of :func:`script` (the same steps for every run) under a FixedClock and prints
``ack <step> <result>`` once a step is done; an order is acknowledged only after its batch committed.
``--die-after-commits K`` makes the process SIGKILL itself right after its K-th committed batch, before
the step that wrote it is acknowledged. A restarted session resumes at the first step not acknowledged:
the marks of the earlier steps are applied to the market before the exchange listens, orders carry
client order ids, so redoing a step that had committed changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
from dataclasses import dataclass
from typing import Any

from nof0.engine.exchange.provider import OrderRequest, Trigger
from nof0.engine.exchange.sim.exchange import SimExchange
from nof0.engine.market.provider import Mids
from nof0.kernel.clock import FixedClock
from nof0.runtime import Servers, open_runtime
from tests.conftest import make_config
from tests.engine.exchange.simkit import T0, TRADER, market, markets_seeing

TRADERS = (TRADER, "kill_t2")
SYMBOLS = ("BTC", "ETH", "SOL")
START = {"BTC": 100_000.0, "ETH": 4000.0, "SOL": 200.0}


@dataclass(frozen=True)
class Step:
    ts_ms: int
    kind: str  # mids | order | cancel
    trader: str = ""
    prices: dict[str, float] | None = None
    order: OrderRequest | None = None
    cancel_cloid: str | None = None  # the earlier order to cancel


def script(seed: int = 7, n: int = 60) -> list[Step]:
    rng = random.Random(seed)
    prices = dict(START)
    steps: list[Step] = []
    ts = T0 + 1000
    limits: list[tuple[str, str, str]] = []  # (trader, cloid, symbol) of GTC limits placed so far
    for i in range(n):
        ts += rng.choice([1000, 60_000, 900_000])  # crosses several hour boundaries: funding
        roll = rng.random()
        if roll < 0.45:
            for s in SYMBOLS:
                prices[s] = round(prices[s] * (1 + rng.uniform(-0.02, 0.02)), 2)
            steps.append(Step(ts, "mids", prices=dict(prices)))
            continue
        trader = rng.choice(TRADERS)
        symbol = rng.choice(SYMBOLS)
        cloid = f"k{i}"
        notional = rng.uniform(50, 800)
        size = round(notional / prices[symbol], 5)
        side = rng.choice(["buy", "sell"])
        if roll < 0.65:
            order = OrderRequest(symbol, side, size, leverage=rng.choice([2, 5, 10]), cloid=cloid)
        elif roll < 0.78:
            off = 0.99 if side == "buy" else 1.01
            order = OrderRequest(symbol, side, size, "limit", price=prices[symbol] * off, tif="Gtc",
                                 leverage=rng.choice([3, 5]), cloid=cloid)
            limits.append((trader, cloid, symbol))
        elif roll < 0.88:
            kind = rng.choice(["tp", "sl"])
            up = (kind == "tp") == (side == "sell")
            order = OrderRequest(symbol, side, size * 3, reduce_only=True, cloid=cloid,
                                 trigger=Trigger(kind, prices[symbol] * (1.01 if up else 0.99)))
        elif roll < 0.94 and limits:
            t, c, _ = limits.pop(rng.randrange(len(limits)))
            steps.append(Step(ts, "cancel", trader=t, cancel_cloid=c))
            continue
        else:
            order = OrderRequest(symbol, side, size * 5, reduce_only=True, cloid=cloid)
        steps.append(Step(ts, "order", trader=trader, order=order))
    return steps


async def run(args: argparse.Namespace) -> None:
    steps = script()
    config = make_config(args.dsn, args.redis, args.prefix)
    clock = FixedClock(T0)
    async with open_runtime(config, Servers(args.dsn, args.redis), clock=clock) as rt:
        state = market(dict(START))
        earlier = [s for s in steps[:args.start] if s.kind == "mids"]
        if earlier:  # the marks the uninterrupted session had at this point
            await state.apply_mids(Mids(ts_ms=earlier[-1].ts_ms, prices=dict(earlier[-1].prices or {})))
        if args.start:
            clock.value = steps[args.start - 1].ts_ms
        ex = SimExchange(rt, "sim", config.exchange.providers["sim"], markets_seeing(config, state))
        commits = 0

        async def count(_types: set[str]) -> None:
            nonlocal commits
            commits += 1
            if args.die_after_commits and commits >= args.die_after_commits:
                os.kill(os.getpid(), signal.SIGKILL)

        ex.service.on_committed.append(count)
        await ex.start(traders=TRADERS)
        for i in range(args.start, len(steps)):
            step = steps[i]
            clock.value = step.ts_ms
            result: Any = None
            if step.kind == "mids":
                await state.apply_mids(Mids(ts_ms=step.ts_ms, prices=dict(step.prices or {})))
            elif step.kind == "order":
                assert step.order is not None
                r = await ex.place_order(step.trader, step.order)
                result = (r.status, r.oid, r.filled_size, r.avg_price, r.fee_usd, r.error)
            else:
                target = next((o for o in await ex.open_orders(step.trader) if o.cloid == step.cancel_cloid), None)
                result = await ex.cancel(step.trader, target.symbol, target.oid) if target else "gone"
            print(f"ack {i} {result!r}", flush=True)
        print("done", flush=True)
        await ex.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("dsn")
    p.add_argument("redis")
    p.add_argument("prefix")
    p.add_argument("--from", dest="start", type=int, default=0)
    p.add_argument("--die-after-commits", type=int, default=0)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
