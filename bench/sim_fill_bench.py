"""Sim exchange throughput: fills/s through the whole paper-trading path, beside the fill pipeline alone
(the same fills through IngestService), measured in the same run.

"Whole path" = ``SimExchange.place_order`` for market orders of several traders: the rules on a copy of
the account, then an IngestService batch (the order's ``sim_order``, ``fill`` and ``sim_balance``: the
fills ledger, the fill book's trades, positions and equity, the sim tables, Redis after commit), and only
then the acknowledgement. Measured with the traders one at a time (one batch per order) and all at once
(orders arriving while a batch is written share the next one: group commit). "Fill pipeline alone" = the same fills (read back from ``fills``, under
other model ids) through ``IngestService.ingest`` in its normal batches, as a feed of venue fills would.

    python bench/sim_fill_bench.py                   # embedded PostgreSQL + Redis in a temporary folder
    NOF0_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/postgres \\
    NOF0_REDIS_URL=redis://127.0.0.1:6379/0 python bench/sim_fill_bench.py   # the machine's servers

With external servers the run uses a scratch database (created and dropped) and its own Redis key
prefix (deleted afterwards); nothing else on the servers is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from scratch import scratch_servers  # noqa: E402
from nof0.engine.exchange.provider import OrderRequest  # noqa: E402
from nof0.engine.exchange.sim.exchange import SimExchange  # noqa: E402
from nof0.engine.market.provider import AssetContext, AssetInfo, MarketSnapshot, Mids  # noqa: E402
from nof0.engine.market.state import MarketState  # noqa: E402
from nof0.ingest.service import IngestService  # noqa: E402
from nof0.kernel.events import Fill, ModelEvent, SymbolEvent  # noqa: E402
from nof0.runtime import Servers, open_runtime  # noqa: E402
from nof0.trades import repository as trades_repo  # noqa: E402

T0 = 1_761_400_000_000
MARKS = {"BTC": 111_000.0, "ETH": 3900.0, "SOL": 190.0}
ASSETS = {"BTC": AssetInfo("BTC", 5, 40), "ETH": AssetInfo("ETH", 4, 25), "SOL": AssetInfo("SOL", 2, 20)}
SIZES = {"BTC": 0.002, "ETH": 0.05, "SOL": 1.0}


def _market() -> MarketState:
    state = MarketState("hyperliquid")
    state.apply_snapshot(MarketSnapshot(T0, dict(ASSETS), {
        s: AssetContext(funding=0.0, open_interest=1e6, mark_px=p) for s, p in MARKS.items()}))
    return state


async def whole_path(config, servers: Servers, orders: int, traders: list[str], together: bool
                     ) -> tuple[float, list[Fill]]:
    """``orders`` market orders split over ``traders``, each trader's one after the other; the traders one
    at a time, or all at once (as the arena runs them: their batches then share commits)."""
    async with open_runtime(config, servers) as rt:
        state = _market()
        ex = SimExchange(rt, "sim", config.exchange.providers["sim"], {"hyperliquid": state})
        await ex.start(traders=traders)
        symbols = sorted(MARKS)
        per_trader = orders // len(traders)

        async def trade(n: int, trader: str) -> None:
            for i in range(per_trader):
                if n == 0 and i % 10 == 0:  # the marks move now and then (each move visits every account)
                    k = 1 + 0.001 * ((i // 10) % 7 - 3)
                    await state.apply_mids(Mids(T0 + i, {s: round(p * k, 1) for s, p in MARKS.items()}))
                symbol = symbols[i % len(symbols)]
                side = "buy" if (i // len(symbols)) % 2 == 0 else "sell"  # open, then close
                result = await ex.place_order(trader, OrderRequest(symbol, side, SIZES[symbol], leverage=5))
                if result.status != "filled":
                    raise SystemExit(f"order {i} of {trader} was not filled: {result}")

        started = time.perf_counter()
        if together:
            await asyncio.gather(*(trade(n, t) for n, t in enumerate(traders)))
        else:
            for n, t in enumerate(traders):
                await trade(n, t)
        elapsed = time.perf_counter() - started
        await ex.close()
        async with rt.pool.connection() as conn, conn.transaction():
            fills = [Fill(**row) for t in traders for row in await trades_repo.list_fills(conn, t)]
    return elapsed, fills


async def pipeline_alone(config, servers: Servers, fills: list[Fill]) -> float:
    import msgspec

    renamed = [msgspec.structs.replace(f, model_id="p_" + f.model_id) for f in fills]
    registrations = [ModelEvent(id=m) for m in sorted({f.model_id for f in renamed})]
    registrations += [SymbolEvent(symbol=s) for s in sorted(MARKS)]
    async with open_runtime(config, servers) as rt:
        service = IngestService(rt)
        await service.ingest(registrations, source="bench")
        started = time.perf_counter()
        report = await service.ingest(renamed, source="bench")
        elapsed = time.perf_counter() - started
    if report.rejected or report.accepted != len(renamed):
        raise SystemExit(f"bench fills were not fully accepted: {report.summary()}")
    return elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=2000)
    p.add_argument("--traders", type=int, default=5)
    args = p.parse_args()

    with scratch_servers() as run:
        config, servers = run.config, run.servers
        alone = [f"bench_a{i}" for i in range(args.traders)]
        together = [f"bench_t{i}" for i in range(args.traders)]
        alone_s, alone_fills = asyncio.run(whole_path(config, servers, args.orders, alone, together=False))
        together_s, fills = asyncio.run(whole_path(config, servers, args.orders, together, together=True))
        pipe_s = asyncio.run(pipeline_alone(config, servers, fills))
        print(f"nof0 sim fill benchmark on {run.where}: {len(fills)} market orders of {args.traders} traders, "
              f"one fill each")
        pipe_rate = len(fills) / pipe_s
        print(f"  {'fill pipeline alone (IngestService, batched)':<52} {pipe_rate:>10,.0f} fills/s")
        for label, secs, n in (("sim exchange, whole path, one trader at a time", alone_s, len(alone_fills)),
                               ("sim exchange, whole path, traders at once", together_s, len(fills))):
            rate = n / secs
            print(f"  {label:<52} {rate:>10,.0f} fills/s  ratio to the pipeline alone {rate / pipe_rate:.3f}"
                  f"  ({1000 * secs / n:.2f} ms per acknowledged order)")
        return 0

if __name__ == "__main__":
    sys.exit(main())
