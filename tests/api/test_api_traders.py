"""``/api/traders``: status, last and next decision of each model, from ``models`` and ``trader_state``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from nof0.api.invalidate import invalidate_api_payloads
from nof0.ingest.service import IngestService
from nof0.ingest.traders_sync import sync_traders
from nof0.kernel.events import DecisionCycle, LlmCall, ModelEvent, TraderState
from tests.api.conftest import NOW_MS, listening_client
from tests.api.seed import seed_models

NOW = datetime.fromtimestamp(NOW_MS / 1000, tz=timezone.utc)


async def test_synced_traders_run_and_imported_models_have_no_status(clock_rt, client):
    await sync_traders(clock_rt)
    await seed_models(clock_rt, {"gpt-5"})
    body = (await client.get("/api/traders")).json()
    assert body["serverTime"] == NOW_MS
    by_id = {t["id"]: t for t in body["traders"]}
    configured = {t.id: t for t in clock_rt.config.manager.traders}
    assert set(by_id) == set(configured) | {"gpt-5"}
    for tid, trader in configured.items():
        got = by_id[tid]
        assert (got["name"], got["status"], got["llm_model"]) == (trader.name, "running", trader.model)
        assert got["decision_interval_s"] == float(trader.decision_interval)
        assert got["last_decision_at"] is None and got["next_decision_at"] is None
        assert got["budget"] == {"tokens_today": 0, "cost_usd_today": 0.0, "calls_today": 0,
                                 "daily_budget_usd": trader.daily_budget_usd,
                                 "daily_budget_tokens": trader.daily_budget_tokens}
    assert by_id["gpt-5"]["status"] is None and by_id["gpt-5"]["decision_interval_s"] is None
    assert by_id["gpt-5"]["budget"] is None


async def test_budget_counts_todays_model_calls(clock_rt, client):
    await sync_traders(clock_rt)
    trader = clock_rt.config.manager.traders[0]
    day = NOW_MS - NOW_MS % 86_400_000
    report = await IngestService(clock_rt).ingest([
        LlmCall(trader_id=trader.id, cycle_number=1, attempt=1, model="gpt-5", ts_ms=day - 1, outcome="ok",
                prompt_tokens=1000, cost_usd=1.0),
        LlmCall(trader_id=trader.id, cycle_number=2, attempt=1, model="gpt-5", ts_ms=day + 5, outcome="ok",
                prompt_tokens=300, completion_tokens=100, cost_usd=0.25),
    ])
    assert report.ok
    got = {t["id"]: t for t in (await client.get("/api/traders")).json()["traders"]}[trader.id]["budget"]
    assert (got["tokens_today"], got["cost_usd_today"], got["calls_today"]) == (400, 0.25, 1)


async def test_pause_and_next_decision(clock_rt, client):
    await sync_traders(clock_rt)
    a, b = (t for t in clock_rt.config.manager.traders[:2])
    last = NOW - timedelta(seconds=60)
    pause = NOW + timedelta(hours=1)
    report = await IngestService(clock_rt).ingest([
        TraderState(trader_id=a.id, exchange_provider=a.exchange_provider, market_provider=a.market_provider,
                    last_decision_at=last),
        TraderState(trader_id=b.id, exchange_provider=b.exchange_provider, market_provider=b.market_provider,
                    last_decision_at=last, pause_until=pause),
    ])
    assert report.accepted == 2
    body = (await client.get("/api/traders")).json()
    by_id = {t["id"]: t for t in body["traders"]}
    assert by_id[a.id]["status"] == "running"
    assert by_id[a.id]["last_decision_at"] == last.timestamp()
    assert by_id[a.id]["next_decision_at"] == last.timestamp() + float(a.decision_interval)
    # paused: the next decision is not before the pause ends
    assert by_id[b.id]["status"] == "paused" and by_id[b.id]["pause_until"] == pause.timestamp()
    assert by_id[b.id]["next_decision_at"] == pause.timestamp()
    # once the pause is over the same row reads as running (the response is rebuilt after its TTL)
    clock_rt.clock.advance(2 * 3600 * 1000)
    await invalidate_api_payloads(clock_rt, ["traders"])
    after = {t["id"]: t for t in (await client.get("/api/traders")).json()["traders"]}
    assert after[b.id]["status"] == "running"


async def test_last_decision_falls_back_to_the_latest_cycle(clock_rt, client):
    executed = NOW - timedelta(seconds=30)
    report = await IngestService(clock_rt).ingest([
        ModelEvent(id="m1", display_name="Model One", trader_config={"decision_interval": 120.0, "model": "x"}),
        DecisionCycle(model_id="m1", cycle_number=1, decisions=[], success=True, executed_at=executed - timedelta(minutes=5)),
        DecisionCycle(model_id="m1", cycle_number=2, decisions=[], success=True, executed_at=executed),
    ])
    assert report.accepted == 3
    (m1,) = (await client.get("/api/traders")).json()["traders"]
    assert (m1["name"], m1["status"], m1["last_cycle_number"]) == ("Model One", None, 2)
    assert m1["last_decision_at"] == executed.timestamp()
    assert m1["next_decision_at"] == executed.timestamp() + 120


async def test_the_response_is_cached_and_dropped_by_a_trader_state_load(clock_rt):
    await sync_traders(clock_rt)
    t = clock_rt.config.manager.traders[0]
    async with listening_client(clock_rt) as (client, listener):
        first = await client.get("/api/traders")
        assert first.headers["cache-control"] == "public, max-age=10"
        assert (await client.get("/api/traders")).headers["etag"] == first.headers["etag"]  # cached
        await IngestService(clock_rt).ingest([TraderState(
            trader_id=t.id, exchange_provider=t.exchange_provider, market_provider=t.market_provider,
            pause_until=NOW + timedelta(minutes=5))])
        await listener.caught_up()  # the clock stands still: the near cache is dropped with Redis
        fresh = {x["id"]: x for x in (await client.get("/api/traders")).json()["traders"]}
    assert fresh[t.id]["status"] == "paused"
