"""Two traders' managers sharing the traders through leases (docs/scaling.md), in one test process on
the real Postgres and Redis, each with its own sim exchange (as two engine processes would have): the
first takes every trader; a second joins and gets its share, each moved trader continuing its cycle
numbering from the journal on the other side; a holder that stops renewing loses its traders to the
other within the lease TTL; and every write of a process whose lease was taken over is refused by
Postgres, its paper orders included."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from nof0.config import RiskParams, TraderConfig
from nof0.engine.exchange.provider import ExchangeError, OrderRequest
from nof0.engine.exchange.sim.exchange import SimExchange
from nof0.engine.leases import LeaseTable, share_of
from nof0.engine.market.sim import SimMarket
from nof0.engine.market.state import MarketState
from nof0.engine.runner import wall_ms
from nof0.engine.traders.manager import Manager
from nof0.ingest.service import IngestService
from nof0.kernel.clock import FixedClock
from nof0.kernel.events import ConversationMessage, ModelEvent, SimBalance, SymbolEvent

T0 = 1_761_400_800_000
INTERVAL_MS = 60_000
IDS = [f"s{i}" for i in range(5)]
DEADLINE_S = 30.0


def _configure(rt) -> None:
    rt.config.executor.allowed_symbols = ["BTC", "ETH"]
    rt.config.ttl.lease = 1.0  # a short TTL: a takeover within the test's deadline
    rt.config.manager.traders = [TraderConfig(
        id=i, name=f"Shared {i}", exchange_provider="sim", market_provider="hyperliquid", model="strategy:momentum",
        prompt_template="prompts/swing_momentum.tmpl", decision_interval=INTERVAL_MS / 1000,
        starting_capital_usd=10_000, strategy_params={"leverage": 3},
        risk_params=RiskParams(max_positions=2, max_position_size_usd=500, max_margin_usage_pct=80,
                               major_coin_leverage=10, altcoin_leverage=5, min_risk_reward_ratio=1.5,
                               min_confidence=0.6, min_liquidity_usd=0)) for i in IDS]


@dataclasses.dataclass
class Process:
    """What one engine process holds: its fencing tokens, its ingestion, its sim exchange, its manager."""
    manager: Manager | None
    exchange: SimExchange
    leases: LeaseTable | None


def _process(rt, owner: str, provider: SimMarket, mk: MarketState) -> Process:
    ingest = IngestService(rt, linger_s=0, fences={})
    exchange = SimExchange(rt, "sim", rt.config.exchange.providers["sim"], {"hyperliquid": mk}, ingest=ingest)
    exchange.lock_wait_s = 0.2  # as a shared engine does: a locked account is retried at the next tick
    leases = LeaseTable(rt.redis, rt.keys, owner, IDS, now_ms=wall_ms)
    manager = Manager(rt, exchanges={"sim": exchange}, markets={"hyperliquid": mk},
                      candles={"hyperliquid": provider.candles}, ingest=ingest, leases=leases, run_id=owner)
    return Process(manager, exchange, leases)


async def _until(what: str, check, *procs: Process) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE_S
    while not check():
        if loop.time() > end:
            raise TimeoutError(f"{what}: {[(p.leases.owner, sorted(p.manager.traders)) for p in procs]}")
        for p in procs:
            await p.manager.rebalance()
        await asyncio.sleep(0.05)


async def _cycles(rt) -> list[tuple[str, int, str]]:
    async with rt.pool.connection() as conn:
        cur = await conn.execute("SELECT model_id, cycle_number, run_id FROM decision_cycles ORDER BY 1, 2")
        return [(r["model_id"], r["cycle_number"], r["run_id"]) for r in await cur.fetchall()]


@pytest.fixture
async def arena(rt):
    clock = FixedClock(T0)
    rt = dataclasses.replace(rt, clock=clock)
    _configure(rt)
    await IngestService(rt).ingest([SymbolEvent(symbol="BTC"), SymbolEvent(symbol="ETH")])
    provider = SimMarket("hyperliquid", ["BTC", "ETH"], clock=clock, seed=7)
    mk = MarketState("hyperliquid")
    mk.apply_snapshot(provider.snapshot_at(T0))
    await mk.apply_mids(provider.mids_at(T0))
    procs: list[Process] = []
    yield rt, clock, provider, mk, procs
    for p in procs:
        await p.exchange.close()


async def _minute(clock, provider, mk, n: int) -> None:
    clock.value = T0 + n * INTERVAL_MS
    mk.apply_snapshot(provider.snapshot_at(clock.value))
    await mk.apply_mids(provider.mids_at(clock.value))


async def test_a_joining_process_gets_its_share_and_a_silent_one_loses_everything(arena):
    rt, clock, provider, mk, procs = arena
    a = _process(rt, "a", provider, mk)
    procs.append(a)
    await a.manager.start()
    assert sorted(a.manager.traders) == IDS
    assert {r.cycle_number for r in await a.manager.run_due()} == {1}

    b = _process(rt, "b", provider, mk)
    procs.append(b)
    await b.manager.start()
    want_b = share_of("b", ["a", "b"], IDS)
    await _until("b gets its share", lambda: set(b.manager.traders) == want_b
                 and set(a.manager.traders) == set(IDS) - want_b, a, b)
    assert all(b.manager.traders[t].next_cycle == 2 for t in want_b)  # continued from the journal

    await _minute(clock, provider, mk, 1)
    ran = [(r.trader_id, r.cycle_number) for p in (a, b) for r in await p.manager.run_due()]
    assert sorted(ran) == [(t, 2) for t in IDS]  # each trader once, in one process

    # b goes silent (paused, cut off): its leases lapse and a takes every trader, with a newer token
    b_tokens = dict(b.manager.fences)
    await _until("a takes b's leases", lambda: sorted(a.leases.held) == IDS, a)
    assert all(a.leases.held[t] > b_tokens[t] for t in want_b)
    # b's sim exchange still holds those paper accounts while b lives: a cannot start them yet
    assert set(a.manager.traders) == set(IDS) - want_b
    # b wakes: its rebalance learns the leases are lost and drops the traders (their accounts' locks)
    await b.manager.rebalance()
    assert b.manager.traders == {}
    await _until("a starts b's traders", lambda: sorted(a.manager.traders) == IDS, a)
    assert all(a.manager.fences[t] > b_tokens[t] for t in want_b)

    await _minute(clock, provider, mk, 2)
    assert sorted((r.trader_id, r.cycle_number) for r in await a.manager.run_due()) == [(t, 3) for t in IDS]
    cycles = await _cycles(rt)
    assert sorted((m, n) for m, n, _ in cycles) == sorted((t, n) for t in IDS for n in (1, 2, 3))
    assert {run for m, n, run in cycles if n == 2 and m in want_b} == {"b"}


async def test_postgres_refuses_every_write_of_a_process_whose_lease_was_taken_over(arena):
    rt, clock, provider, mk, procs = arena
    trader = IDS[0]
    stale = IngestService(rt, linger_s=0, fences={trader: 5})
    fresh = IngestService(rt, linger_s=0, fences={trader: 6})
    assert (await IngestService(rt).ingest([ModelEvent(id=trader, starting_capital_usd=10_000)])).ok
    assert (await stale.ingest([SimBalance(trader_id=trader, asset="USD", total=10_000, available=10_000,
                                           ts_ms=T0, seq=1)])).ok
    assert (await fresh.ingest([ConversationMessage(model_id=trader, role="user", content="new holder",
                                                    ts_ms=T0 + 1)])).ok
    report = await stale.ingest([
        ConversationMessage(model_id=trader, role="user", content="late", ts_ms=T0 + 2),
        SimBalance(trader_id=trader, asset="USD", total=1.0, available=1.0, ts_ms=T0 + 2, seq=2),
        SymbolEvent(symbol="SOL"),  # names no trader: not fenced
    ])
    assert [r.event_type for r in report.rejections] == ["conversation_message", "sim_balance"]
    assert all("stale fencing token 5" in r.reason and "token 6" in r.reason for r in report.rejections)
    async with rt.pool.connection() as conn:
        cur = await conn.execute("SELECT total FROM sim_balances WHERE trader_id = %s", (trader,))
        assert [r["total"] for r in await cur.fetchall()] == [10_000]
        cur = await conn.execute("SELECT count(*) AS n FROM symbols WHERE symbol = 'SOL'")
        assert (await cur.fetchone())["n"] == 1


async def test_the_sim_exchange_refuses_a_stale_trader_s_order_and_keeps_the_others(arena):
    rt, clock, provider, mk, procs = arena
    stale, fresh = IDS[0], IDS[1]
    ingest = IngestService(rt, linger_s=0, fences={stale: 5, fresh: 5})
    exchange = SimExchange(rt, "sim", rt.config.exchange.providers["sim"], {"hyperliquid": mk}, ingest=ingest)
    procs.append(Process(None, exchange, None))  # closed by the fixture
    await exchange.start(traders=[stale, fresh])
    assert (await IngestService(rt).ingest([ModelEvent(id=t, starting_capital_usd=10_000) for t in (stale, fresh)])).ok
    # another process took ``stale`` over and wrote for it
    assert (await IngestService(rt, fences={stale: 6}).ingest([
        ConversationMessage(model_id=stale, role="user", content="new holder", ts_ms=T0)])).ok
    order = OrderRequest(symbol="BTC", side="buy", size=0.001, order_type="market", tif="Ioc", leverage=2)
    refused, placed = await asyncio.gather(exchange.place_order(stale, order), exchange.place_order(fresh, order),
                                           return_exceptions=True)
    assert isinstance(refused, ExchangeError) and "stale fencing token 5" in str(refused)
    assert not isinstance(placed, Exception) and placed.status == "filled"
    async with rt.pool.connection() as conn:
        cur = await conn.execute("SELECT model_id FROM fills ORDER BY 1")
        assert [r["model_id"] for r in await cur.fetchall()] == [fresh]
