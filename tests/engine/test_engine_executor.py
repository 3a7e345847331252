"""A trader driven through the fake gateway for a scripted session under a simulated clock, on the sim
market and the sim exchange: open
(with a guard rejection beside it), hold, a malformed reply, a 429 then a close, a re-entry refused
by the cooldown; then a restart that continues the numbering and honours the cooldown and a pause.
Every row and key the session leaves is checked."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import msgspec
import pytest

from nof0.analytics.job import run_analytics
from nof0.config import LLMModel, RiskParams, TraderConfig
from nof0.engine.market.sim import SimMarket
from nof0.engine.market.state import MarketState
from nof0.engine.traders.executor import cloid_for
from nof0.engine.traders.manager import Manager
from nof0.engine.traders.runtime_state import ms_to_dt
from nof0.ingest.service import IngestService
from nof0.kernel.clock import FixedClock
from nof0.kernel.events import SymbolEvent, TraderState
from nof0.llm_calls import repository as llm_repo
from tests.fakes.openai_gateway import FakeGateway
from nof0.engine.exchange.sim.exchange import SimExchange

T0 = 1_761_400_800_000  # a whole minute
MIN = 60_000


def reply(decisions: dict, summary: str = "") -> str:
    return "Reasoning about the market.\n" + json.dumps({"cot_trace_summary": summary, "decisions": decisions})


def entry(mark: float, **kw) -> dict:
    """A long BTC entry around ``mark`` with reward/risk 3."""
    return {"signal": "buy_to_enter", "quantity": round(400 / mark, 5), "leverage": 5,
            "profit_target": round(mark * 1.03), "stop_loss": round(mark * 0.99), "confidence": 0.8, "risk_usd": 4,
            "invalidation_condition": "a 4h close below the stop", "justification": "trend", **kw}


def open_reply(btc: float, eth: float) -> str:
    return reply({"BTC": entry(btc),
                  "ETH": {"signal": "sell_to_enter", "quantity": round(300 / eth, 4), "leverage": 50,
                          "profit_target": round(eth * 0.95), "stop_loss": round(eth * 1.02), "confidence": 0.9,
                          "justification": "too much leverage"}}, "long BTC")


HOLD = reply({"BTC": {"signal": "hold", "confidence": 0.7}}, "holding")
CLOSE = reply({"BTC": {"signal": "close_position", "confidence": 0.9, "justification": "done"}}, "closing BTC")


def sim_market(clock: FixedClock) -> tuple[SimMarket, MarketState]:
    """The seeded sim market and the state its feed would keep (applied by :func:`tick`)."""
    provider = SimMarket("hyperliquid", ["BTC", "ETH"], clock=clock, seed=7)
    return provider, MarketState("hyperliquid")


async def tick(provider: SimMarket, state: MarketState, now_ms: int) -> None:
    state.apply_snapshot(provider.snapshot_at(now_ms))
    await state.apply_mids(provider.mids_at(now_ms))


def configure(rt, gateway: FakeGateway) -> None:
    cfg = rt.config
    cfg.llm = msgspec.structs.replace(cfg.llm, base_url=gateway.base_url, api_key="sk-test", retry_backoff=0.001,
                                      retry_backoff_max=0.001, models={"fake": LLMModel(
                                          provider_model="fake-model", input_usd_per_mtok=1, output_usd_per_mtok=2)})
    cfg.executor.allowed_symbols = ["BTC", "ETH"]
    cfg.manager.traders = [TraderConfig(
        id="t1", name="Trader One", exchange_provider="sim", market_provider="hyperliquid", model="fake",
        prompt_template="prompts/aggressive_short.tmpl", decision_interval=60, starting_capital_usd=10_000,
        cooldown={"after_close": "10m", "after_loss": "20m"},
        risk_params=RiskParams(max_positions=2, max_position_size_usd=1000, max_margin_usage_pct=50,
                               major_coin_leverage=10, altcoin_leverage=5, min_risk_reward_ratio=2,
                               min_confidence=0.6, min_liquidity_usd=1_000_000))]


async def _rows(rt, sql: str, *args):
    async with rt.pool.connection() as conn:
        cur = await conn.execute(sql, args)
        return await cur.fetchall()


@pytest.fixture
async def gateway():
    gw = FakeGateway()
    async with gw.running():
        yield gw


@dataclasses.dataclass
class Session:
    """One trader ``t1`` on the sim market and exchange under a fixed clock, started (:func:`start_session`)."""

    rt: Any
    clock: FixedClock
    ingest: IngestService
    provider: SimMarket
    market: MarketState
    exchange: SimExchange
    manager: Manager


async def start_session(rt, gateway: FakeGateway, run_id: str = "run-a") -> Session:
    clock = FixedClock(T0)
    rt = dataclasses.replace(rt, clock=clock)
    configure(rt, gateway)
    ingest = IngestService(rt, linger_s=0)
    await ingest.ingest([SymbolEvent(symbol="BTC"), SymbolEvent(symbol="ETH")])
    provider, mk = sim_market(clock)
    await tick(provider, mk, T0)
    exchange = SimExchange(rt, "sim", rt.config.exchange.providers["sim"], {"hyperliquid": mk}, ingest=ingest)
    await exchange.start()
    mgr = Manager(rt, exchanges={"sim": exchange}, markets={"hyperliquid": mk},
                  candles={"hyperliquid": provider.candles}, ingest=ingest, run_id=run_id)
    await mgr.start()
    return Session(rt, clock, ingest, provider, mk, exchange, mgr)


async def test_scripted_session_leaves_every_row_and_key(rt, gateway, redis_sync, redis_prefix):
    s = await start_session(rt, gateway)
    rt, clock, ingest, provider, mk = s.rt, s.clock, s.ingest, s.provider, s.market
    exchange, mgr = s.exchange, s.manager
    steps = [  # the gateway's answers for each cycle, made from the marks of that minute
        lambda: [{"kind": "ok", "content": open_reply(mk.mark("BTC"), mk.mark("ETH"))}],
        lambda: [{"kind": "ok", "content": HOLD}],
        lambda: ["malformed"],
        lambda: ["429", {"kind": "ok", "content": CLOSE}],
        lambda: [{"kind": "ok", "content": reply({"BTC": entry(mk.mark("BTC"))})}],
    ]
    for i, step in enumerate(steps):
        clock.value = T0 + i * MIN
        await tick(provider, mk, clock.value)
        gateway.push(*step())
        (res,) = await mgr.run_due()
        assert res.cycle_number == i + 1
    assert await mgr.run_due(T0 + 4 * MIN + 30_000) == []  # not due again yet

    cycles = await _rows(rt, "SELECT * FROM decision_cycles WHERE model_id = 't1' ORDER BY cycle_number")
    assert [(c["cycle_number"], c["success"]) for c in cycles] == [(1, True), (2, True), (3, False), (4, True), (5, True)]
    first = {d["symbol"]: d for d in cycles[0]["decisions"]}
    assert first["BTC"]["status"] == "executed" and first["BTC"]["signal"] == "long" and first["BTC"]["tp_oid"]
    assert first["ETH"]["status"] == "rejected" and "leverage 50 above the trader's cap 10" in first["ETH"]["reason"]
    assert cycles[0]["cot_trace"] == "Reasoning about the market." and cycles[0]["cot_trace_summary"] == "long BTC"
    assert cycles[0]["prompt_digest"].startswith("sha256:") and cycles[0]["template_digest"].startswith("sha256:")
    assert cycles[0]["run_id"] == "run-a"
    assert cycles[1]["decisions"][0]["status"] == "held"
    assert "broke the decision contract" in cycles[2]["error_message"] and cycles[2]["decisions"] == []
    assert cycles[3]["decisions"][0]["status"] == "executed" and cycles[3]["decisions"][0]["signal"] == "close"
    reentry = cycles[4]["decisions"][0]
    assert reentry["status"] == "rejected" and "cooldown" in reentry["reason"]

    # the exchange took one entry, its two triggers and one close; the triggers went with the close
    orders = await _rows(rt, "SELECT symbol, side, order_type, reduce_only, status, cloid FROM sim_orders"
                             " WHERE trader_id = 't1' ORDER BY oid")
    assert [(o["symbol"], o["side"], o["order_type"], o["reduce_only"], o["status"]) for o in orders] == [
        ("BTC", "buy", "market", False, "filled"), ("BTC", "sell", "take_profit", True, "canceled"),
        ("BTC", "sell", "stop", True, "canceled"), ("BTC", "sell", "market", True, "filled")]
    assert orders[0]["cloid"] == cloid_for("t1", 1, "BTC", "open") and await exchange.open_orders("t1") == []
    fills = await _rows(rt, "SELECT side, size FROM fills WHERE model_id = 't1' ORDER BY ts_ms")
    size = first["BTC"]["quantity"]
    assert [(f["side"], f["size"]) for f in fills] == [("buy", size), ("sell", size)]
    (trade,) = await _rows(rt, "SELECT * FROM trades WHERE model_id = 't1'")
    assert trade["side"] == "long" and trade["exit_ts_ms"] == T0 + 3 * MIN

    msgs = await _rows(rt, "SELECT m.role, m.ts_ms, m.metadata FROM conversation_messages m JOIN conversations c"
                           " ON c.id = m.conversation_id WHERE c.model_id = 't1' ORDER BY m.ts_ms, m.id")
    assert len(msgs) == 15 and {m["metadata"]["cycle"] for m in msgs} == {1, 2, 3, 4, 5}
    async with rt.pool.connection() as conn:
        calls = await llm_repo.list_llm_calls(conn, "t1")
    assert [(c["cycle_number"], c["attempt"], c["outcome"]) for c in calls] == [
        (1, 1, "ok"), (2, 1, "ok"), (3, 1, "invalid_reply"), (4, 1, "rate_limited"), (4, 2, "ok"), (5, 1, "ok")]
    assert calls[0]["cost_usd"] == pytest.approx((120 * 1 + 40 * 2) / 1e6)

    (state,) = await _rows(rt, "SELECT * FROM trader_state WHERE trader_id = 't1'")
    assert state["cooldown"]["symbols"]["BTC"]["until_ms"] == T0 + 3 * MIN + (20 if trade["realized_net_pnl"] < 0 else 10) * MIN
    assert state["risk_guards"]["leverage_caps"] == {"BTC": 10, "ETH": 10}  # the trader's caps: below the assets'
    assert mk.asset("BTC").max_leverage >= 10
    assert state["last_decision_at"].timestamp() * 1000 == T0 + 4 * MIN
    last = json.loads(redis_sync.get(f"{redis_prefix}:decision:last:t1"))
    assert last["cycle_number"] == 5
    assert redis_sync.hget(f"{redis_prefix}:trader:t1:state", "trader_id") == b"t1"

    # the analytics' signal and invocation tables fill from the cycles
    report = await run_analytics(rt, ["t1"])
    assert report.computed == ["t1"]
    (payload,) = await _rows(rt, "SELECT payload FROM model_analytics WHERE model_id = 't1'")
    signals = payload["payload"]["signals_breakdown_table"]
    assert (signals["num_long_signals"], signals["num_short_signals"], signals["num_close_signals"],
            signals["num_hold_signals"]) == (2, 1, 1, 1)
    assert payload["payload"]["invocation_breakdown_table"]["num_invocations"] == 5

    # a lower maxLeverage in the asset metadata lowers the trader's cap from its next cycle on
    mk.assets["BTC"] = dataclasses.replace(mk.assets["BTC"], max_leverage=3)
    clock.value = T0 + 5 * MIN
    gateway.push({"kind": "ok", "content": HOLD})
    (res,) = await mgr.run_due()
    assert res.success and mgr.traders["t1"].limits.leverage_caps["BTC"] == 3
    (guards,) = await _rows(rt, "SELECT risk_guards FROM trader_state WHERE trader_id = 't1'")
    assert guards["risk_guards"]["leverage_caps"]["BTC"] == 3

    # a restart (a new manager on the same store) continues the numbering and keeps the cooldown
    await exchange.close()
    exchange2 = SimExchange(rt, "sim", rt.config.exchange.providers["sim"], {"hyperliquid": mk}, ingest=ingest)
    await exchange2.start()
    again = Manager(rt, exchanges={"sim": exchange2}, markets={"hyperliquid": mk},
                    candles={"hyperliquid": provider.candles}, ingest=IngestService(rt, linger_s=0), run_id="run-b")
    await again.start()
    tr = again.traders["t1"]
    assert (tr.next_cycle, tr.invocations, tr.last_decision_ms) == (7, 6, T0 + 5 * MIN)
    assert tr.cooldowns["BTC"]["until_ms"] == state["cooldown"]["symbols"]["BTC"]["until_ms"]
    # a pause written by another process (nof0 traders pause) is honoured before the cycle
    await ingest.ingest([TraderState(trader_id="t1", exchange_provider="sim", market_provider="hyperliquid",
                                     pause_until=ms_to_dt(T0 + 30 * MIN))])
    assert await again.run_due(T0 + 7 * MIN) == [] and tr.status == "paused"
    gateway.push({"kind": "ok", "content": HOLD})
    clock.value = T0 + 31 * MIN
    (res,) = await again.run_due()
    assert res.cycle_number == 7 and res.success
    await exchange2.close()


async def test_unavailable_model_is_reported_and_skipped(rt, gateway):
    clock = FixedClock(T0)
    rt = dataclasses.replace(rt, clock=clock)
    configure(rt, gateway)
    rt.config.llm = msgspec.structs.replace(rt.config.llm, api_key="")
    ingest = IngestService(rt, linger_s=0)
    await ingest.ingest([SymbolEvent(symbol="BTC"), SymbolEvent(symbol="ETH")])
    provider, mk = sim_market(clock)
    await tick(provider, mk, T0)
    sim = SimExchange(rt, "sim", rt.config.exchange.providers["sim"], {"hyperliquid": mk}, ingest=ingest)
    mgr = Manager(rt, exchanges={"sim": sim}, markets={"hyperliquid": mk},
                  candles={"hyperliquid": provider.candles}, ingest=ingest)
    await mgr.start()
    (res,) = await mgr.run_due()
    assert res.cycle_number is None and "no API key" in res.error
    status = {s["trader"]: s for s in mgr.status()}
    assert status["t1"]["status"] == "unavailable" and "NOF0_LLM_API_KEY" in status["t1"]["reason"]
    assert await _rows(rt, "SELECT 1 FROM decision_cycles") == []
    assert await mgr.run_due(T0 + 1000) == []  # not retried before the next interval
    await sim.close()
