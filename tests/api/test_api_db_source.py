"""The db source: every endpoint built from Postgres rows (seeded as the pipelines store them)."""

from __future__ import annotations

import json

import msgspec
import pytest

from nof0.api.read_path import LOCAL_FRESH_MS
from nof0.api.sources.db import TRADES_PER_MODEL
from tests.api.conftest import NOW_MS
from tests.api.seed import load, seed_models, seed_position, seed_prices, seed_snapshot, seed_trades


@pytest.fixture
async def seeded(clock_rt):
    await seed_snapshot(clock_rt)
    return clock_rt


async def test_trades_equal_the_capture_field_for_field(seeded, client):
    r = await client.get("/api/trades")
    assert r.status_code == 200
    body = r.json()
    assert body["serverTime"] == NOW_MS
    served = body["trades"]
    captured = load("trades.json")["trades"]
    assert len(served) == len(captured) == 230
    assert {t["id"]: t for t in served} == {t["id"]: t for t in captured}
    exits = [t["exit_time"] for t in served]
    assert exits == sorted(exits, reverse=True)  # newest exit first


async def test_trades_keep_each_models_latest_hundred(clock_rt, client):
    base = load("trades.json")["trades"][0]
    many = [{**base, "id": f"t{i:03d}", "entry_time": 1_761_000_000 + i, "exit_time": 1_761_000_100 + i}
            for i in range(TRADES_PER_MODEL + 5)]
    await seed_trades(clock_rt, many)
    served = (await client.get("/api/trades")).json()["trades"]
    assert [t["id"] for t in served] == [f"t{i:03d}" for i in range(TRADES_PER_MODEL + 4, 4, -1)]


async def test_crypto_prices_equal_the_capture(seeded, client):
    body = (await client.get("/api/crypto-prices")).json()
    assert body == {"prices": load("crypto-prices.json")["prices"], "serverTime": NOW_MS}


async def test_crypto_prices_prefer_the_redis_domain_value(clock_rt, client, redis_sync):
    await seed_prices(clock_rt, {"BTC": {"symbol": "BTC", "price": 1.0, "timestamp": 5}})
    live = {"BTC": {"symbol": "BTC", "price": 2.0, "timestamp": 6}}
    redis_sync.set(clock_rt.keys.crypto_prices().name, json.dumps(live))
    assert (await client.get("/api/crypto-prices")).json()["prices"] == live


async def test_since_inception_values_equal_the_capture(seeded, client):
    body = (await client.get("/api/since-inception-values")).json()
    assert body == {**load("since-inception-values.json"), "serverTime": NOW_MS}  # same order too


async def test_conversations_equal_the_sample(seeded, client):
    served = (await client.get("/api/conversations")).json()["conversations"]
    sample = load("conversations.json")["conversations"]
    assert {c["model_id"]: c["messages"] for c in served} == {c["model_id"]: c["messages"] for c in sample}


async def test_conversations_keep_the_configured_window(clock_rt, client):
    clock_rt.config.root.ingest.conversation_window = 2
    await seed_snapshot(clock_rt)
    served = (await client.get("/api/conversations")).json()["conversations"]
    sample = {c["model_id"]: c["messages"] for c in load("conversations.json")["conversations"]}
    assert {c["model_id"]: c["messages"] for c in served} == {m: msgs[-2:] for m, msgs in sample.items()}


async def test_positions_are_marked_at_the_latest_price(clock_rt, client):
    await seed_models(clock_rt, {"gpt-5"})
    await seed_prices(clock_rt, {"BTC": {"symbol": "BTC", "price": 106969.5, "timestamp": 1}})
    await seed_position(clock_rt, id="p1", model_id="gpt-5", symbol="BTC", side="short", entry_price=107067.9,
                        quantity=0.13, leverage=15, confidence=0.62, entry_ts_ms=1760740073000, entry_oid=204614807391,
                        exit_plan={"stop_loss": 109362.4}, metadata={"risk_usd": 300, "closed_pnl": -6.26})
    await seed_position(clock_rt, id="p0", model_id="gpt-5", symbol="ETH", side="long", entry_price=3860,
                        quantity=1, entry_ts_ms=1760740000000, status="closed", exit_ts_ms=1760740001000)
    body = (await client.get("/api/positions")).json()
    assert body["serverTime"] == NOW_MS
    [account] = body["accountTotals"]
    assert account["model_id"] == "gpt-5" and list(account["positions"]) == ["BTC"]
    btc = account["positions"]["BTC"]
    assert btc["quantity"] == -0.13 and btc["current_price"] == 106969.5 and btc["leverage"] == 15
    assert btc["unrealized_pnl"] == pytest.approx((106969.5 - 107067.9) * -0.13)
    assert btc["margin"] == pytest.approx(0.13 * 106969.5 / 15)
    assert btc["risk_usd"] == 300 and btc["closed_pnl"] == -6.26 and btc["entry_time"] == 1760740073
    assert btc["exit_plan"] == {"stop_loss": 109362.4} and btc["entry_oid"] == 204614807391


async def test_positions_limit_counts_models(clock_rt, client):
    await seed_models(clock_rt, {"a", "b", "c"})
    for m in ("a", "b", "c"):
        await seed_position(clock_rt, id=f"p-{m}", model_id=m, symbol="BTC", side="long", entry_price=1.0,
                            quantity=1.0, entry_ts_ms=1000)
    full = (await client.get("/api/positions")).json()["accountTotals"]
    two = (await client.get("/api/positions?limit=2")).json()["accountTotals"]
    assert [a["model_id"] for a in full] == ["a", "b", "c"] and two == full[:2]


async def test_leaderboard_from_the_view_then_from_the_job_value(clock_rt, client, redis_sync):
    await seed_snapshot(clock_rt)
    async with clock_rt.pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT refresh_views_nof0()")
    rows = (await client.get("/api/leaderboard")).json()
    assert "serverTime" not in rows
    by_id = {e["id"]: e for e in rows["leaderboard"]}
    assert set(by_id) == {v["model_id"] for v in load("since-inception-values.json")["sinceInceptionValues"]}
    grok = by_id["grok-4"]
    grok_trades = [t for t in load("trades.json")["trades"] if t["model_id"] == "grok-4"]
    assert grok["num_trades"] == len(grok_trades) == 20
    assert grok["num_wins"] == sum(t["realized_net_pnl"] > 0 for t in grok_trades)
    assert grok["lose_dollars"] == pytest.approx(sum(t["realized_net_pnl"] for t in grok_trades
                                                     if t["realized_net_pnl"] < 0))
    assert set(grok) == {"id", "num_trades", "sharpe", "win_dollars", "num_losses", "lose_dollars", "return_pct",
                         "equity", "num_wins"}
    # the leaderboard job's pre-rendered body wins over the view (once the cached response is gone)
    job_body = load("leaderboard.json")
    redis_sync.set(clock_rt.keys.leaderboard_cache().name, json.dumps(job_body))
    redis_sync.delete(clock_rt.keys.api_payload("leaderboard", "all", "medium").name)
    clock_rt.clock.advance(LOCAL_FRESH_MS)
    assert (await client.get("/api/leaderboard")).json() == job_body


async def test_analytics_from_postgres_and_from_redis(clock_rt, client, redis_sync):
    grok = load("analytics-grok-4.json")["analytics"][0]
    await seed_models(clock_rt, {"grok-4", "gpt-5"})
    async with clock_rt.pool.connection() as conn, conn.transaction():
        await conn.execute("INSERT INTO model_analytics (model_id, updated_at, payload, server_time_ms)"
                           " VALUES ('grok-4', now(), %s::jsonb, 1)", (json.dumps(grok),))
    every = (await client.get("/api/analytics")).json()
    one = (await client.get("/api/analytics/grok-4")).json()
    pending = await client.get("/api/analytics/gpt-5")
    unknown = await client.get("/api/analytics/gpt-6")
    assert every == {"analytics": [grok], "serverTime": NOW_MS} and one == every
    assert pending.status_code == 200 and pending.json()["analytics"] == []
    assert unknown.status_code == 404 and "gpt-6" in unknown.json()["detail"]
    # values published by the analytics job are read first
    newer = {**grok, "updated_at": 1.0}
    redis_sync.set(clock_rt.keys.analytics("gpt-5").name, msgspec.json.encode(newer))
    redis_sync.set(clock_rt.keys.analytics_all().name, msgspec.json.encode({"analytics": [newer]}))
    for variant in ("all", "gpt-5"):
        redis_sync.delete(clock_rt.keys.api_payload("analytics", variant, "long").name)
    clock_rt.clock.advance(LOCAL_FRESH_MS)
    assert (await client.get("/api/analytics/gpt-5")).json()["analytics"] == [newer]
    assert (await client.get("/api/analytics")).json()["analytics"] == [newer]


async def test_malformed_domain_value_is_a_miss(clock_rt, client, redis_sync):
    await seed_prices(clock_rt, load("crypto-prices.json")["prices"])
    redis_sync.set(clock_rt.keys.crypto_prices().name, b"\xff not json")
    assert (await client.get("/api/crypto-prices")).json()["prices"] == load("crypto-prices.json")["prices"]


async def test_empty_database_answers_every_endpoint(client):
    for path, key in [("/api/crypto-prices", "prices"), ("/api/positions", "accountTotals"),
                      ("/api/account-totals", "accountTotals"), ("/api/trades", "trades"),
                      ("/api/since-inception-values", "sinceInceptionValues"), ("/api/leaderboard", "leaderboard"),
                      ("/api/analytics", "analytics"), ("/api/conversations", "conversations")]:
        r = await client.get(path)
        assert r.status_code == 200, path
        assert not r.json()[key], path
