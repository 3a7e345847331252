"""The sim exchange through IngestService on real Postgres and Redis: what it stores, what a restart
rebuilds, and marks driving resting orders, triggers, liquidation and funding under a FixedClock.

Numbers follow etc/exchange.yaml's sim: taker 0.045 %, maker 0.015 %, slippage 2 bps."""

from __future__ import annotations

import json

import pytest

from nof0.engine.exchange.provider import ExchangeError, OrderRequest, Trigger
from nof0.kernel.clock import FixedClock
from tests.engine.exchange.simkit import T0, TRADER, market, move, rows, sim

HOUR = 3_600_000


def approx(x: float):
    return pytest.approx(x, rel=1e-12, abs=1e-9)


@pytest.fixture
def clocked(rt):
    rt.clock = FixedClock(T0)
    return rt


async def test_a_position_opened_and_closed_gives_the_trade_fees_balance_and_equity_of_the_rules(clocked, redis_sync):
    rt = clocked
    state = market()
    ex = sim(rt, state)
    await ex.start()
    opened = await ex.place_order(TRADER, OrderRequest("ETH", "buy", 0.1, leverage=10, confidence=0.7,
                                                       exit_plan={"profit_target": 4400}))
    # 4000 x 1.0002 = 4000.8; fee 400.08 x 0.00045 = 0.180036
    assert (opened.status, opened.filled_size, opened.avg_price) == ("filled", 0.1, 4000.8)
    assert opened.fee_usd == approx(0.180036)
    acct = await ex.account(TRADER)
    assert acct.margin_used_usd == approx(40.008)
    assert acct.equity_usd == approx(10_000 - 0.180036 + (4000 - 4000.8) * 0.1)
    (pos,) = await rows(rt, "SELECT side, quantity, entry_price, leverage, status FROM positions WHERE model_id = %s", TRADER)
    assert pos == {"side": "long", "quantity": 0.1, "entry_price": 4000.8, "leverage": 10.0, "status": "open"}

    rt.clock.advance(60_000)
    await move(state, T0 + 60_000, ETH=4100.0)
    closed = await ex.close_position(TRADER, "ETH")
    # 4100 x 0.9998 = 4099.18 -> 4099.2 (5 significant figures); fee 409.92 x 0.00045 = 0.184464
    assert (closed.status, closed.avg_price) == ("filled", 4099.2)
    (trade,) = await rows(rt, "SELECT * FROM trades WHERE model_id = %s", TRADER)
    assert (trade["side"], trade["quantity"], trade["entry_price"], trade["exit_price"]) == ("long", 0.1, 4000.8, 4099.2)
    assert trade["realized_gross_pnl"] == approx(9.84)
    assert trade["total_commission_dollars"] == approx(0.3645)
    assert trade["realized_net_pnl"] == approx(9.4755)
    assert (trade["leverage"], trade["confidence"], trade["exit_plan"]) == (10.0, 0.7, {"profit_target": 4400})
    (bal,) = await rows(rt, "SELECT total, available, margin_used FROM sim_balances WHERE trader_id = %s", TRADER)
    assert bal == {"total": approx(10_009.4755), "available": approx(10_009.4755), "margin_used": 0.0}
    (eq,) = await rows(rt, "SELECT equity_usd FROM account_equity_snapshots WHERE model_id = %s AND ts_ms = %s",
                       TRADER, T0 + 60_000)
    assert eq["equity_usd"] == approx(10_009.4755)
    assert (await ex.account(TRADER)).equity_usd == approx(10_009.4755)
    orders = await rows(rt, "SELECT oid, status, order_type, filled_size FROM sim_orders WHERE trader_id = %s ORDER BY oid",
                        TRADER)
    assert [(o["status"], o["order_type"]) for o in orders] == [("filled", "market"), ("filled", "market")]
    cached = [json.loads(x) for x in redis_sync.lrange(rt.keys.sim_orders(TRADER).name, 0, -1)]
    assert [c["oid"] for c in cached] == [o["oid"] for o in orders]
    usd = json.loads(redis_sync.hget(rt.keys.sim_balances(TRADER).name, "USD"))
    assert usd["total"] == approx(10_009.4755)
    await ex.close()


async def test_a_client_order_id_places_one_order_even_across_a_restart(clocked):
    rt, state = clocked, market()
    ex = sim(rt, state)
    first = await ex.place_order(TRADER, OrderRequest("BTC", "buy", 0.001, leverage=5, cloid="c-1"))
    again = await ex.place_order(TRADER, OrderRequest("BTC", "buy", 0.001, leverage=5, cloid="c-1"))
    assert first == again and first.status == "filled"
    await ex.close()
    ex2 = sim(rt, state)
    assert await ex2.place_order(TRADER, OrderRequest("BTC", "buy", 0.001, leverage=5, cloid="c-1")) == first
    assert len(await rows(rt, "SELECT 1 FROM fills WHERE model_id = %s", TRADER)) == 1
    await ex2.close()


async def test_a_restart_rebuilds_positions_resting_orders_triggers_and_balance(clocked):
    rt, state = clocked, market()
    ex = sim(rt, state)
    await ex.start()
    await ex.place_order(TRADER, OrderRequest("ETH", "buy", 0.2, leverage=10))
    rest = await ex.place_order(TRADER, OrderRequest("SOL", "buy", 1.0, "limit", price=190.0, tif="Gtc", leverage=5))
    tp = await ex.place_order(TRADER, OrderRequest("ETH", "sell", 0.2, reduce_only=True,
                                                   trigger=Trigger("tp", 4400.0)))
    assert (rest.status, tp.status) == ("resting", "resting")
    before = (await ex.account(TRADER), await ex.open_orders(TRADER))
    await ex.close()

    ex2 = sim(rt, state)
    await ex2.start()  # loads the traders bound to "sim" in manager.yaml
    assert (await ex2.account(TRADER), await ex2.open_orders(TRADER)) == before
    rt.clock.advance(1000)
    await move(state, T0 + 1000, SOL=189.5, ETH=4400.0)
    orders = {o["oid"]: o for o in await rows(rt, "SELECT oid, status, avg_px FROM sim_orders WHERE trader_id = %s", TRADER)}
    assert orders[rest.oid]["status"] == "filled" and orders[rest.oid]["avg_px"] == 190.0  # as maker, at its price
    assert orders[tp.oid]["status"] == "filled" and orders[tp.oid]["avg_px"] == 4399.1  # 4400 x 0.9998
    positions = await ex2.positions(TRADER)
    assert [(p.symbol, p.side, p.size) for p in positions] == [("SOL", "long", 1.0)]
    assert positions[0].margin_usd == approx(38.0)  # 190 / 5
    # ids keep growing after the restart: nothing acknowledged is reused
    tids = [r["tid"] for r in await rows(rt, "SELECT tid FROM fills WHERE model_id = %s ORDER BY tid", TRADER)]
    assert len(tids) == len(set(tids)) == 3
    await ex2.close()


async def test_liquidation_when_margin_plus_pnl_falls_below_maintenance(clocked):
    rt, state = clocked, market()
    ex = sim(rt, state)
    await ex.start()
    await ex.place_order(TRADER, OrderRequest("ETH", "buy", 1.0, leverage=25))  # at 4000.8, margin 160.032
    (pos,) = await ex.positions(TRADER)
    liq = (4000.8 - 160.032) / 0.98  # (entry - margin / size) / (1 - 1 / (2 x 25)) = 3919.1510...
    assert pos.liquidation_price == approx(liq)
    rt.clock.advance(1000)
    await move(state, T0 + 1000, ETH=3919.2)
    assert len(await ex.positions(TRADER)) == 1
    rt.clock.advance(1000)
    await move(state, T0 + 2000, ETH=3919.1)
    assert await ex.positions(TRADER) == []
    fills = await rows(rt, "SELECT side, price, size, fee_usd, liquidation FROM fills WHERE model_id = %s ORDER BY tid",
                       TRADER)
    assert fills[-1]["side"] == "sell" and fills[-1]["price"] == 3919.1 and fills[-1]["liquidation"]["method"] == "market"
    (bal,) = await rows(rt, "SELECT total FROM sim_balances WHERE trader_id = %s", TRADER)
    open_fee, liq_fee = 4000.8 * 0.00045, 3919.1 * 0.00045
    assert bal["total"] == approx(10_000 - open_fee + (3919.1 - 4000.8) - liq_fee)
    await ex.close()


async def test_funding_is_settled_every_hour_of_the_injected_clock(clocked):
    rt, state = clocked, market(funding=0.0001)
    ex = sim(rt, state)
    await ex.start()
    await ex.place_order(TRADER, OrderRequest("BTC", "sell", 0.01, leverage=10))  # a short earns positive funding
    (bal,) = await rows(rt, "SELECT total FROM sim_balances WHERE trader_id = %s", TRADER)
    cash = bal["total"]
    rt.clock.value = T0 + HOUR - 1
    await move(state, T0 + HOUR - 1, BTC=100_000.0)
    assert (await rows(rt, "SELECT total FROM sim_balances WHERE trader_id = %s", TRADER))[0]["total"] == cash
    rt.clock.value = T0 + HOUR + 5
    await move(state, T0 + HOUR + 5, BTC=101_000.0)
    (bal,) = await rows(rt, "SELECT total, funding_ms FROM sim_balances WHERE trader_id = %s", TRADER)
    assert bal["total"] == approx(cash + 0.01 * 101_000 * 0.0001) and bal["funding_ms"] == T0 + HOUR
    (eq,) = await rows(rt, "SELECT equity_usd FROM account_equity_snapshots WHERE model_id = %s AND ts_ms = %s",
                       TRADER, T0 + HOUR + 5)
    assert eq["equity_usd"] == approx(bal["total"] + (99_980.0 - 101_000.0) * 0.01)
    rt.clock.value = T0 + HOUR + 10
    await move(state, T0 + HOUR + 10, BTC=101_000.0)  # the same hour: settled once
    assert (await rows(rt, "SELECT total FROM sim_balances WHERE trader_id = %s", TRADER))[0]["total"] == bal["total"]
    await ex.close()


async def test_rejections_are_stored_and_explained(clocked):
    rt, state = clocked, market()
    ex = sim(rt, state)
    small = await ex.place_order(TRADER, OrderRequest("BTC", "buy", 0.00001))
    assert small.status == "rejected" and "minimum value of $10" in small.error
    post = await ex.place_order(TRADER, OrderRequest("ETH", "buy", 0.1, "limit", price=4001.0, tif="Alo"))
    assert post.status == "rejected" and post.error.startswith("Post only")
    unknown = await ex.place_order(TRADER, OrderRequest("NOPE", "buy", 1.0))
    assert unknown.status == "rejected" and unknown.oid is None and "no metadata" in unknown.error
    bad = await ex.place_order(TRADER, OrderRequest("BTC", "buy", float("nan")))
    assert bad.status == "rejected" and bad.error.startswith("size=nan")
    stored = await rows(rt, "SELECT status, reason FROM sim_orders WHERE trader_id = %s ORDER BY oid", TRADER)
    assert [s["status"] for s in stored] == ["rejected", "rejected"]
    with pytest.raises(ExchangeError, match="above BTC's maximum of 40"):
        await ex.update_leverage(TRADER, "BTC", 50)
    await ex.close()


class _FailingService:
    async def ingest(self, events, *, source):
        raise OSError("connection lost")


async def test_an_order_whose_batch_did_not_commit_is_not_acknowledged_nor_kept(clocked):
    rt, state = clocked, market()
    ex = sim(rt, state)
    real = ex.service
    ex.service = _FailingService()
    with pytest.raises(ExchangeError, match="could not be stored"):
        await ex.place_order(TRADER, OrderRequest("ETH", "buy", 0.1))
    ex.service = real
    assert await ex.positions(TRADER) == []  # reloaded from Postgres: nothing happened
    assert (await ex.place_order(TRADER, OrderRequest("ETH", "buy", 0.1))).oid == 1
    await ex.close()


async def test_a_second_process_cannot_take_a_trader_it_does_not_own(clocked):
    rt, state = clocked, market()
    ex, other = sim(rt, state), sim(rt, state)
    await ex.place_order(TRADER, OrderRequest("ETH", "buy", 0.1))
    import nof0.engine.exchange.sim.exchange as mod

    mod._LOCK_WAIT_S, saved = 0.1, mod._LOCK_WAIT_S
    try:
        with pytest.raises(ExchangeError, match="in use by another process"):
            await other.account(TRADER)
    finally:
        mod._LOCK_WAIT_S = saved
        await other.close()
        await ex.close()


class _CountingService:
    def __init__(self, real) -> None:
        self.real, self.batches = real, []

    async def ingest(self, events, *, source):
        self.batches.append(len(events))
        return await self.real.ingest(events, source=source)


async def test_traders_ordering_at_once_share_one_batch(clocked):
    import asyncio

    rt, state = clocked, market()
    ex = sim(rt, state)
    traders = [f"gc_{i}" for i in range(5)]
    await ex.start(traders=traders)
    ex.service = counting = _CountingService(ex.service)
    results = await asyncio.gather(*(ex.place_order(t, OrderRequest("ETH", "buy", 0.01, cloid="x")) for t in traders))
    assert [r.status for r in results] == ["filled"] * 5 and len(counting.batches) == 1  # group commit
    fills = await rows(rt, "SELECT model_id, oid, tid FROM fills ORDER BY model_id")
    assert [(f["model_id"], f["oid"], f["tid"]) for f in fills] == [(t, 1, 2) for t in traders]  # per-trader ids
    again = await asyncio.gather(*(ex.place_order(t, OrderRequest("ETH", "buy", 0.01, cloid="x")) for t in traders))
    assert again == results and len(counting.batches) == 1  # retries are answered without a write
    await ex.close()
