"""A generated event log of every type (about 100k events) for the replay test: deterministic for a seed."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timezone
from pathlib import Path

from tests.ingest.factories import T0

META = json.loads((Path(__file__).parents[1] / "fixtures" / "hyperliquid-meta-and-asset-ctxs.json").read_text())
MODELS = ["gpt-5", "claude-sonnet-4-5", "grok-4", "qwen3-max", "deepseek-chat-v3.1"]
SYMBOLS = ["BTC", "ETH", "SOL", "BNB", "DOGE", "XRP"]
START = {"BTC": 111000.0, "ETH": 3900.0, "SOL": 190.0, "BNB": 1100.0, "DOGE": 0.195, "XRP": 2.6}


def _walk(rng: random.Random, price: float) -> float:
    return round(price * (1 + rng.uniform(-0.002, 0.002)), 6)


def generate(seed: int = 7, ticks: int = 75_000, fills: int = 5_000) -> tuple[list[str], list[str]]:
    """(registration lines, fact lines): registrations must come first; the facts may come in any order."""
    rng = random.Random(seed)
    reg = [{"type": "model", "id": m, "display_name": m.upper(), "starting_capital_usd": 10_000.0} for m in MODELS]
    reg += [{"type": "symbol", "symbol": s} for s in SYMBOLS]
    facts: list[dict] = []
    prices = dict(START)

    for i in range(ticks):  # six symbols every 50 ms, and a second source now and then at the same millisecond
        s = SYMBOLS[i % 6]
        prices[s] = _walk(rng, prices[s])
        ts = T0 + (i // 6) * 50
        facts.append({"type": "price_tick", "symbol": s, "price": prices[s], "ts_ms": ts})
        if i % 20 == 0:
            facts.append({"type": "price_tick", "symbol": s, "price": _walk(rng, prices[s]), "ts_ms": ts,
                          "source": "binance"})

    for n in range(20):
        meta = json.loads(json.dumps(META))
        for ctx in meta[1]:
            ctx["markPx"] = str(round(float(ctx["markPx"]) * (1 + n / 1000), 8))
        facts.append({"type": "market_meta", "provider": "hyperliquid", "ts_ms": T0 + n * 60_000,
                      "meta_and_asset_ctxs": meta})

    marks = dict(START)
    ts_by_model = {m: T0 for m in MODELS}
    for n in range(fills):  # fills that open, extend, reduce, close and flip; ties at one millisecond
        m, s = rng.choice(MODELS), rng.choice(SYMBOLS)
        marks[s] = _walk(rng, marks[s])
        ts_by_model[m] += rng.choice([0, 1, 250, 1000])
        size = rng.choice([0.5, 1.0, 1.5, 2.0, 3.0]) * (1 if marks[s] > 100 else 1000)
        fill = {"type": "fill", "model_id": m, "symbol": s, "side": rng.choice(["buy", "sell"]), "price": marks[s],
                "size": size, "fee_usd": round(marks[s] * size * 0.00045, 6), "ts_ms": ts_by_model[m],
                "oid": 200_000_000_000 + n, "tid": 900_000_000_000 + n, "crossed": rng.random() < 0.7}
        if rng.random() < 0.3:
            fill.update(leverage=rng.choice([5, 10, 20]), confidence=round(rng.random(), 2),
                        exit_plan={"stop_loss": round(marks[s] * 0.95, 4), "invalidation_condition": "4h close"})
        facts.append(fill)

    for n in range(2_000):  # closed trades as a venue reports them (nof1 shape)
        m, s = rng.choice(MODELS), rng.choice(SYMBOLS)
        side = rng.choice(["long", "short"])
        entry = round(START[s] * rng.uniform(0.9, 1.1), 6)
        exit_ = round(entry * rng.uniform(0.95, 1.05), 6)
        qty = rng.choice([1.0, 2.0]) * (-1 if side == "short" else 1)
        t_in = (T0 + n * 60_000) / 1000
        facts.append({
            "type": "trade", "id": f"{m[:20]}_{uuid.UUID(int=rng.getrandbits(128))}", "model_id": m, "symbol": s,
            "side": side, "trade_type": side, "quantity": qty, "leverage": 10.0, "confidence": 0.5,
            "entry_price": entry, "exit_price": exit_, "entry_time": t_in, "exit_time": t_in + 3600.5,
            "entry_tid": n, "exit_tid": n + 1, "entry_oid": n, "exit_oid": n + 1, "entry_sz": abs(qty),
            "exit_sz": abs(qty), "entry_crossed": True, "exit_crossed": False, "entry_liquidation": None,
            "exit_plan": {}, "realized_gross_pnl": (exit_ - entry) * qty, "realized_net_pnl": (exit_ - entry) * qty - 1,
            "total_commission_dollars": 1.0, "entry_commission_dollars": 0.5, "exit_commission_dollars": 0.5,
            "entry_closed_pnl": -0.5, "exit_closed_pnl": (exit_ - entry) * qty - 0.5,
        })

    for n in range(2_000):  # positions opened or adjusted once; every other one closed later
        m, s = rng.choice(MODELS), rng.choice(SYMBOLS)
        pid = f"pos-{n}"
        facts.append({"type": "position", "id": pid, "model_id": m, "symbol": s, "side": rng.choice(["long", "short"]),
                      "entry_price": START[s], "quantity": rng.choice([1.0, 2.5]), "entry_ts_ms": T0 + n * 1000,
                      "leverage": 10.0, "commission": 0.25, "metadata": {"risk_usd": 100 + n}})
        if n % 2:
            facts.append({"type": "position_close", "id": pid, "exit_price": round(START[s] * 1.01, 6),
                          "exit_ts_ms": T0 + n * 1000 + 90_000, "commission": 0.3})

    for n in range(3_000):  # equity reported by the engine (some on fill milliseconds: the fills keep those)
        m = MODELS[n % 5]
        facts.append({"type": "equity_snapshot", "model_id": m, "ts_ms": T0 + 7 + (n // 5) * 997,
                      "equity_usd": round(10_000 * rng.uniform(0.8, 1.2), 2), "realized_pnl": 1.0,
                      "unrealized_pnl": -1.0})

    for n in range(10_000):
        m = MODELS[n % 5]
        facts.append({"type": "conversation_message", "model_id": m, "role": ["system", "user", "assistant"][n % 3],
                      "content": f"message {n}: " + "analysis " * rng.randint(1, 20), "ts_ms": T0 + (n // 5) * 1000})

    for n in range(3_000):
        m = MODELS[n % 5]
        decisions = [{"signal": rng.choice(["long", "short", "close", "hold"]), "symbol": rng.choice(SYMBOLS),
                      "confidence": round(rng.random(), 2), "leverage": rng.choice([5, 10]), "note": f"n{n}"}]
        at = datetime.fromtimestamp((T0 + (n // 5) * 180_000) / 1000, tz=timezone.utc)
        facts.append({"type": "decision_cycle", "model_id": m, "cycle_number": n // 5, "decisions": decisions,
                      "success": n % 7 != 0, "executed_at": at.isoformat(), "prompt_digest": f"sha256:{n:08x}"})

    for n in range(2_000):  # simulator orders (open, then filled later) and balances
        m = MODELS[n % 5]
        order = {"type": "sim_order", "trader_id": m, "oid": n, "symbol": rng.choice(SYMBOLS), "side": "buy",
                 "size": 1.0, "status": "open", "ts_ms": T0 + n * 10, "price": 100.0}
        facts.append(order)
        facts.append({**order, "status": "filled", "filled_size": 1.0, "ts_ms": T0 + n * 10 + 5})
    for n in range(2_000):
        facts.append({"type": "sim_balance", "trader_id": MODELS[n % 5], "asset": ["USD", "BTC"][n % 2],
                      "total": round(rng.uniform(0, 10_000), 2), "available": 1.0, "ts_ms": T0 + n * 100})

    for m in MODELS:
        facts.append({"type": "trader_state", "trader_id": m, "exchange_provider": "sim",
                      "market_provider": "hyperliquid", "allocation_pct": 20.0, "cooldown": {"after_loss": "15m"}})

    for n in range(100):  # invalid lines, each different (dead letters are unique by raw text)
        facts.append([
            {"type": "price_tick", "symbol": "BTC", "price": -1 - n, "ts_ms": T0},
            {"type": "fill", "model_id": "nobody", "symbol": "BTC", "side": "buy", "price": 1, "size": 1,
             "fee_usd": 0, "ts_ms": T0, "oid": 1, "tid": n},
            {"type": "conversation_message", "model_id": "gpt-5", "role": "tool", "content": f"x{n}", "ts_ms": T0},
        ][n % 3])
    lines = [json.dumps(x) for x in facts]
    return [json.dumps(x) for x in reg], lines
