"""Seed a test database from a nof1 snapshot folder with plain SQL (the API's db-path tests).

Rows are written the way the ingestion pipelines store them (001_domain.sql): times in ms, trade
quantities signed, inception instants to the microsecond, extra position facts in ``metadata``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from nof0.runtime import Runtime
from nof0.timefmt import s_to_ms
from tests.conftest import FIXTURES

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

TRADE_COLUMNS = (
    "id", "trade_id", "model_id", "symbol", "side", "trade_type", "quantity", "leverage", "confidence",
    "entry_price", "entry_ts_ms", "exit_price", "exit_ts_ms", "realized_gross_pnl", "realized_net_pnl",
    "total_commission_dollars", "entry_oid", "exit_oid", "entry_sz", "exit_sz", "entry_tid", "exit_tid",
    "entry_crossed", "exit_crossed", "entry_liquidation", "exit_liquidation", "entry_commission_dollars",
    "exit_commission_dollars", "entry_closed_pnl", "exit_closed_pnl", "exit_plan",
)
_JSON_COLUMNS = {"entry_liquidation", "exit_liquidation", "exit_plan"}


def load(name: str, folder: Path = FIXTURES) -> dict[str, Any]:
    return json.loads((folder / name).read_text())


def seconds_to_dt(s: float) -> datetime:
    return EPOCH + timedelta(microseconds=round(s * 1_000_000))


def trade_row(t: dict[str, Any]) -> tuple[Any, ...]:
    values = {**t, "entry_ts_ms": s_to_ms(t["entry_time"]), "exit_ts_ms": s_to_ms(t["exit_time"])}
    return tuple(Jsonb(values[c]) if c in _JSON_COLUMNS and values[c] is not None else values[c]
                 for c in TRADE_COLUMNS)


async def execute_many(rt: Runtime, sql: str, rows: list[tuple[Any, ...]]) -> None:
    async with rt.pool.connection() as conn, conn.transaction():
        async with conn.cursor() as cur:
            await cur.executemany(sql, rows)


async def seed_models(rt: Runtime, model_ids: set[str]) -> None:
    await execute_many(rt, "INSERT INTO models (id, display_name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                       [(m, m) for m in sorted(model_ids)])


async def seed_trades(rt: Runtime, trades: list[dict[str, Any]]) -> None:
    await seed_models(rt, {t["model_id"] for t in trades})
    cols = ", ".join(TRADE_COLUMNS)
    marks = ", ".join(["%s"] * len(TRADE_COLUMNS))
    await execute_many(rt, f"INSERT INTO trades ({cols}) VALUES ({marks})", [trade_row(t) for t in trades])


async def seed_prices(rt: Runtime, prices: dict[str, dict[str, Any]]) -> None:
    await execute_many(rt, "INSERT INTO price_latest (symbol, price, ts_ms) VALUES (%s, %s, %s)",
                       [(p["symbol"], p["price"], p["timestamp"]) for p in prices.values()])


async def seed_since_inception(rt: Runtime, values: list[dict[str, Any]]) -> None:
    await seed_models(rt, {v["model_id"] for v in values})
    await execute_many(
        rt,
        "INSERT INTO accounts (model_id, starting_capital_usd, inception_at, inception_id) VALUES (%s, %s, %s, %s)",
        [(v["model_id"], v["nav_since_inception"], seconds_to_dt(v["inception_date"]), v["id"]) for v in values],
    )


async def seed_conversations(rt: Runtime, conversations: list[dict[str, Any]]) -> None:
    await seed_models(rt, {c["model_id"] for c in conversations})
    async with rt.pool.connection() as conn, conn.transaction():
        for c in conversations:
            cur = await conn.execute("INSERT INTO conversations (model_id) VALUES (%s) RETURNING id", (c["model_id"],))
            conv_id = (await cur.fetchone())["id"]
            async with conn.cursor() as cur2:
                await cur2.executemany(
                    "INSERT INTO conversation_messages (conversation_id, role, content, ts_ms) VALUES (%s, %s, %s, %s)",
                    [(conv_id, m["role"], m["content"], s_to_ms(m["timestamp"])) for m in c["messages"]],
                )


async def seed_snapshot(rt: Runtime, folder: Path = FIXTURES) -> None:
    """The fact files of a snapshot: trades, prices, since-inception values, conversations."""
    await seed_trades(rt, load("trades.json", folder)["trades"])
    await seed_prices(rt, load("crypto-prices.json", folder)["prices"])
    await seed_since_inception(rt, load("since-inception-values.json", folder)["sinceInceptionValues"])
    await seed_conversations(rt, load("conversations.json", folder)["conversations"])


async def seed_position(rt: Runtime, **row: Any) -> None:
    row = {"leverage": None, "confidence": None, "commission": None, "status": "open", "exit_ts_ms": None,
           "exit_price": None, "metadata": {}, "entry_oid": None, "exit_plan": {}, **row}
    row["metadata"], row["exit_plan"] = Jsonb(row["metadata"]), Jsonb(row["exit_plan"])
    cols = ", ".join(row)
    marks = ", ".join(f"%({c})s" for c in row)
    async with rt.pool.connection() as conn, conn.transaction():
        await conn.execute(f"INSERT INTO positions ({cols}) VALUES ({marks})", row)


async def seed_equity(rt: Runtime, model_id: str, points: list[tuple[int, float, float, float]]) -> None:
    """(ts_ms, equity, realized, unrealized) snapshots of one model."""
    await seed_models(rt, {model_id})
    await execute_many(
        rt,
        "INSERT INTO account_equity_snapshots (model_id, ts_ms, equity_usd, realized_pnl, unrealized_pnl)"
        " VALUES (%s, %s, %s, %s, %s)",
        [(model_id, *p) for p in points],
    )


async def seed_ticks(rt: Runtime, symbol: str, ticks: list[tuple[int, float]]) -> None:
    await execute_many(rt, "INSERT INTO symbols (symbol) VALUES (%s) ON CONFLICT DO NOTHING", [(symbol,)])
    await execute_many(rt, "INSERT INTO price_ticks (symbol, ts_ms, price) VALUES (%s, %s, %s)",
                       [(symbol, ts, px) for ts, px in ticks])


async def seed_positions_file(rt: Runtime, accounts: list[dict[str, Any]]) -> None:
    """positions.json -> open ``positions`` rows (unsigned size + side; extra facts in metadata)."""
    await seed_models(rt, {a["model_id"] for a in accounts})
    for account in accounts:
        for symbol, p in account["positions"].items():
            await seed_position(
                rt, id=f"{account['model_id']}_{symbol}", model_id=account["model_id"], symbol=symbol,
                side="short" if p["quantity"] < 0 else "long", entry_price=p["entry_price"],
                quantity=abs(p["quantity"]), leverage=p.get("leverage"), confidence=p.get("confidence"),
                entry_ts_ms=s_to_ms(p["entry_time"]), entry_oid=p.get("entry_oid"), exit_plan=p.get("exit_plan"),
                metadata={k: p[k] for k in ("risk_usd", "closed_pnl") if k in p},
            )
