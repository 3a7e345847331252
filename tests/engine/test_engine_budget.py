"""Model calls are stored through IngestService (``llm_call``) and a trader's daily budget is their sum
since 00:00 UTC, read back from Postgres (so it survives a restart)."""

from __future__ import annotations

import msgspec

from nof0.config import TraderConfig
from nof0.engine.llm.budget import DAY_MS, budget_status, day_start_ms
from nof0.ingest.service import IngestService
from nof0.llm_calls import repository as repo
from tests.ingest import factories as f


def trader(**kw) -> TraderConfig:
    return TraderConfig(id="m1", name="M1", exchange_provider="sim", market_provider="hyperliquid", **kw)


async def test_llm_calls_are_upserted_by_key_and_rejected_for_unknown_traders(rt):
    svc = IngestService(rt)
    await svc.ingest([f.model("m1")])
    calls = [f.llm_call(n=1, attempt=1, outcome="rate_limited", error="HTTP 429"),
             f.llm_call(n=1, attempt=2, prompt_tokens=100, completion_tokens=20, cost_usd=0.5, latency_ms=12.5)]
    report = await svc.ingest(calls)
    assert report.by_type["llm_call"]["accepted"] == 2
    assert (await svc.ingest(calls)).by_type["llm_call"]["duplicates"] == 2
    # a later state of the same call (the reply broke the contract) replaces the stored one
    changed = msgspec.structs.replace(calls[1], outcome="invalid_reply", error="no JSON")
    assert (await svc.ingest([changed])).by_type["llm_call"]["accepted"] == 1
    bad = await svc.ingest([f.llm_call(trader_id="ghost")])
    assert bad.rejected == 1 and "unknown model" in str(bad.rejections[0])
    async with rt.pool.connection() as conn:
        rows = await repo.list_llm_calls(conn, "m1")
    assert [(r["attempt"], r["outcome"], r["prompt_tokens"], r["cost_usd"]) for r in rows] == [
        (1, "rate_limited", 0, 0.0), (2, "invalid_reply", 100, 0.5)]


async def test_daily_budget_sums_todays_calls_only(rt):
    svc = IngestService(rt)
    await svc.ingest([f.model("m1")])
    now = f.T0
    yesterday = day_start_ms(now) - 1 - f.T0
    await svc.ingest([
        f.llm_call(n=1, dt=yesterday, prompt_tokens=5000, completion_tokens=5000, cost_usd=9.0),
        f.llm_call(n=2, prompt_tokens=600, completion_tokens=400, cost_usd=0.75),
    ])
    st = await budget_status(rt.pool, trader(daily_budget_usd=1.0), now)
    assert (st.tokens, st.cost_usd, st.exhausted) == (1000, 0.75, None)
    spent = await budget_status(rt.pool, trader(daily_budget_usd=0.5), now)
    assert spent.exhausted == "daily budget spent: 0.7500 of 0.5 USD"
    tokens = await budget_status(rt.pool, trader(daily_budget_tokens=1000), now)
    assert tokens.exhausted == "daily budget spent: 1000 of 1000 tokens"
    # the next UTC day starts from zero
    tomorrow = await budget_status(rt.pool, trader(daily_budget_usd=0.5), day_start_ms(now) + DAY_MS)
    assert tomorrow.exhausted is None and tomorrow.tokens == 0
