"""Facts for the analytics tests, written with plain SQL (the ingestion pipelines are another issue).

``seed_arena`` generates several models with accounts, closed trades (winners, losers and exact
break-evens), an equity random walk, decision cycles, positions and conversation messages, and a
model with no facts at all. Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone

import psycopg

T0_MS = 1_760_738_400_000  # 2025-10-17 22:00 UTC
SYMBOLS = ("BTC", "ETH", "SOL")


@dataclass
class Arena:
    models: list[str]
    starting_capital: dict[str, float]
    trades: dict[str, list[dict]] = field(default_factory=dict)
    equity: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


def add_model(conn: psycopg.Connection, model_id: str, starting_capital: float = 10_000.0) -> None:
    conn.execute("INSERT INTO models (id, display_name) VALUES (%s, %s)", (model_id, model_id.upper()))
    conn.execute(
        "INSERT INTO accounts (model_id, starting_capital_usd, inception_at) VALUES (%s, %s, %s)",
        (model_id, starting_capital, datetime.fromtimestamp(T0_MS / 1000, tz=timezone.utc)),
    )


def add_trades(conn: psycopg.Connection, trades: list[dict]) -> None:
    cols = list(trades[0])
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO trades ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
            [[json.dumps(t[c]) if c == "exit_plan" else t[c] for c in cols] for t in trades],
        )


def add_equity(conn: psycopg.Connection, model_id: str, points: list[tuple[int, float]]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO account_equity_snapshots (model_id, ts_ms, equity_usd) VALUES (%s, %s, %s)",
            [(model_id, ts, eq) for ts, eq in points],
        )


def make_trade(rng: random.Random, model_id: str, i: int, net: float | None = None) -> dict:
    side = rng.choice(("long", "short"))
    qty = round(rng.uniform(0.01, 3.0), 4)
    entry = round(rng.uniform(50, 5000), 2)
    entry_ms = T0_MS + i * 600_000 + rng.randrange(60_000)
    fee_in, fee_out = round(rng.uniform(0.1, 5), 6), round(rng.uniform(0.1, 5), 6)
    if net is None:
        net = round(rng.uniform(-400, 400), 6)
    gross = net + fee_in + fee_out
    return {
        "id": f"{model_id}_t{i}",
        "model_id": model_id,
        "symbol": rng.choice(SYMBOLS),
        "side": side,
        "trade_type": side,
        "quantity": qty if side == "long" else -qty,
        "leverage": float(rng.choice((1, 5, 10, 20))),
        "confidence": round(rng.uniform(0.4, 0.9), 2),
        "entry_price": entry,
        "entry_ts_ms": entry_ms,
        "exit_price": round(entry * rng.uniform(0.95, 1.05), 2),
        "exit_ts_ms": entry_ms + rng.randrange(60_000, 6 * 3_600_000),
        "realized_gross_pnl": gross,
        "realized_net_pnl": net,
        "total_commission_dollars": fee_in + fee_out,
        "entry_commission_dollars": fee_in,
        "exit_commission_dollars": fee_out,
        "exit_plan": rng.choice(({}, {"stop_loss": round(entry * 0.97, 2), "profit_target": round(entry * 1.06, 2),
                                      "invalidation_condition": "close if ..."})),
    }


def seed_arena(dsn: str, *, n_models: int = 5, trades_per_model: int = 40, seed: int = 7) -> Arena:
    rng = random.Random(seed)
    models = [f"model-{k}" for k in range(n_models)]
    arena = Arena(models=models + ["idle"], starting_capital={})
    with psycopg.connect(dsn) as conn:
        for k, m in enumerate(models):
            capital = 10_000.0 if k % 2 == 0 else 5_000.0
            add_model(conn, m, capital)
            arena.starting_capital[m] = capital
            trades = [make_trade(rng, m, i) for i in range(trades_per_model)]
            trades[0] = make_trade(rng, m, 0, net=0.0)  # break-even: neither a win nor a loss
            if k == n_models - 1:
                trades = trades[:1]  # a model with a single trade
            add_trades(conn, trades)
            arena.trades[m] = trades
            equity, points = capital, []
            for j in range(30):
                equity *= 1 + rng.uniform(-0.03, 0.031)
                points.append((T0_MS + j * 3_600_000, round(equity, 6)))
            add_equity(conn, m, points)
            arena.equity[m] = points
        add_model(conn, "idle", 10_000.0)  # no trades, no snapshots
        arena.starting_capital["idle"] = 10_000.0
    return arena
