"""A trader driven through the fake gateway for a scripted session under a simulated clock: open
(with a guard rejection beside it), hold, a malformed reply, a 429 then a close, a re-entry refused
by the cooldown; then a restart that continues the numbering and honours the cooldown and a pause.
Every row and key the session leaves is checked."""

from __future__ import annotations

import dataclasses
import json

import msgspec
import pytest

from nof0.config import LLMModel, RiskParams, TraderConfig
from nof0.engine.market.provider import AssetContext, AssetInfo, Candle, MarketSnapshot
from nof0.engine.market.state import MarketState
from nof0.engine.traders.executor import cloid_for
from nof0.engine.traders.manager import Manager
from nof0.engine.traders.runtime_state import ms_to_dt
from nof0.ingest.service import IngestService
from nof0.kernel.clock import FixedClock
from nof0.kernel.events import SymbolEvent, TraderState
from nof0.llm_calls import repository as llm_repo
from tests.fakes.openai_gateway import FakeGateway
from tests.fakes.paper_exchange import PaperExchange

T0 = 1_761_400_800_000  # a whole minute
MIN = 60_000


def reply(decisions: dict, summary: str = "") -> str:
    return "Reasoning about the market.\n" + json.dumps({"cot_trace_summary": summary, "decisions": decisions})


OPEN = reply({"BTC": {"signal": "buy_to_enter", "quantity": 0.004, "leverage": 5, "profit_target": 106000,
                      "stop_loss": 98000, "confidence": 0.8, "risk_usd": 8, "invalidation_condition": "below 97k",
                      "justification": "trend"},
              "ETH": {"signal": "sell_to_enter", "quantity": 0.05, "leverage": 50, "profit_target": 3800,
                      "stop_loss": 4100, "confidence": 0.9, "justification": "too much leverage"}}, "long BTC")
HOLD = reply({"BTC": {"signal": "hold", "quantity": 0.004, "leverage": 5, "confidence": 0.7}}, "holding")
CLOSE = reply({"BTC": {"signal": "close_position", "confidence": 0.9, "justification": "done"}}, "closing BTC")
REENTER = reply({"BTC": {"signal": "buy_to_enter", "quantity": 0.004, "leverage": 5, "profit_target": 106000,
                         "stop_loss": 98000, "confidence": 0.8}})


def market() -> MarketState:
    m = MarketState("hyperliquid")
    m.apply_snapshot(MarketSnapshot(T0, {"BTC": AssetInfo("BTC", 5, 40), "ETH": AssetInfo("ETH", 4, 25)},
                                    {"BTC": AssetContext(0.0000125, 30_000, 100_000),
                                     "ETH": AssetContext(0.00001, 500_000, 4_000)}))
    return m


async def candles(symbol: str, interval: str, start: int, end: int) -> list[Candle]:
    base = 100_000 if symbol == "BTC" else 4_000
    step = 180_000 if interval == "3m" else 14_400_000
    return [Candle(t, t + step - 1, symbol, interval, base, base * 1.001, base * 0.999, base * (1 + i * 1e-4), 1.0)
            for i, t in enumerate(range(start - start % step, end, step))]


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


async def test_scripted_session_leaves_every_row_and_key(rt, gateway, redis_sync, redis_prefix):
    clock = FixedClock(T0)
    rt = dataclasses.replace(rt, clock=clock)
    configure(rt, gateway)
    ingest = IngestService(rt, linger_s=0)
    await ingest.ingest([SymbolEvent(symbol="BTC"), SymbolEvent(symbol="ETH")])
    mk = market()
    exchange = PaperExchange(ingest, mk, clock)
    mgr = Manager(rt, exchanges={"sim": exchange}, markets={"hyperliquid": mk}, candles={"hyperliquid": candles},
                  ingest=ingest, run_id="run-a")
    await mgr.start()
    gateway.push({"kind": "ok", "content": OPEN}, {"kind": "ok", "content": HOLD}, "malformed", "429",
                 {"kind": "ok", "content": CLOSE}, {"kind": "ok", "content": REENTER})
    for i in range(5):
        clock.value = T0 + i * MIN
        mk.marks["BTC"] = 100_000 + i * 500
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

    # the exchange saw one entry, its two triggers and one close; the triggers went with the close
    kinds = [(o.symbol, o.side, o.reduce_only, o.trigger.kind if o.trigger else None) for _, o in exchange.requests]
    assert kinds == [("BTC", "buy", False, None), ("BTC", "sell", True, "tp"), ("BTC", "sell", True, "sl")]
    assert exchange.requests[0][1].cloid == cloid_for("t1", 1, "BTC", "open") and exchange.orders["t1"] == []
    fills = await _rows(rt, "SELECT side, size FROM fills WHERE model_id = 't1' ORDER BY ts_ms")
    assert [(f["side"], f["size"]) for f in fills] == [("buy", 0.004), ("sell", 0.004)]
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
    assert state["risk_guards"]["leverage_caps"] == {"BTC": 10, "ETH": 10}
    assert state["last_decision_at"].timestamp() * 1000 == T0 + 4 * MIN
    last = json.loads(redis_sync.get(f"{redis_prefix}:decision:last:t1"))
    assert last["cycle_number"] == 5
    assert redis_sync.hget(f"{redis_prefix}:trader:t1:state", "trader_id") == b"t1"

    # a restart (a new manager on the same store) continues the numbering and keeps the cooldown
    exchange2 = PaperExchange(ingest, mk, clock)
    again = Manager(rt, exchanges={"sim": exchange2}, markets={"hyperliquid": mk}, candles={"hyperliquid": candles},
                    ingest=IngestService(rt, linger_s=0), run_id="run-b")
    await again.start()
    tr = again.traders["t1"]
    assert (tr.next_cycle, tr.invocations, tr.last_decision_ms) == (6, 5, T0 + 4 * MIN)
    assert tr.cooldowns["BTC"]["until_ms"] == state["cooldown"]["symbols"]["BTC"]["until_ms"]
    # a pause written by another process (nof0 traders pause) is honoured before the cycle
    await ingest.ingest([TraderState(trader_id="t1", exchange_provider="sim", market_provider="hyperliquid",
                                     pause_until=ms_to_dt(T0 + 30 * MIN))])
    assert await again.run_due(T0 + 6 * MIN) == [] and tr.status == "paused"
    gateway.push({"kind": "ok", "content": HOLD})
    clock.value = T0 + 31 * MIN
    (res,) = await again.run_due()
    assert res.cycle_number == 6 and res.success


async def test_unavailable_model_is_reported_and_skipped(rt, gateway):
    clock = FixedClock(T0)
    rt = dataclasses.replace(rt, clock=clock)
    configure(rt, gateway)
    rt.config.llm = msgspec.structs.replace(rt.config.llm, api_key="")
    ingest = IngestService(rt, linger_s=0)
    await ingest.ingest([SymbolEvent(symbol="BTC"), SymbolEvent(symbol="ETH")])
    mk = market()
    mgr = Manager(rt, exchanges={"sim": PaperExchange(ingest, mk, clock)}, markets={"hyperliquid": mk},
                  candles={"hyperliquid": candles}, ingest=ingest)
    await mgr.start()
    (res,) = await mgr.run_due()
    assert res.cycle_number is None and "no API key" in res.error
    status = {s["trader"]: s for s in mgr.status()}
    assert status["t1"]["status"] == "unavailable" and "NOF0_LLM_API_KEY" in status["t1"]["reason"]
    assert await _rows(rt, "SELECT 1 FROM decision_cycles") == []
    assert await mgr.run_due(T0 + 1000) == []  # not retried before the next interval
