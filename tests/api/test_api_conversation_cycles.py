"""``/api/conversations`` serves nof1's per-cycle items from the journal (decision cycles and the
messages written with them) and keeps per-model message lists for messages outside any cycle."""

from __future__ import annotations

from datetime import datetime, timezone

from nof0.ingest.service import IngestService
from nof0.kernel.events import ConversationMessage, DecisionCycle
from tests.ingest import factories as f

T = 1_761_452_300_120


def _cycle(n: int, ts_ms: int, **kw) -> list:
    at = datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc)
    meta = {"cycle": n}
    return [
        ConversationMessage(model_id="m1", role="system", content="You trade.", ts_ms=ts_ms, metadata=meta),
        ConversationMessage(model_id="m1", role="user", content=f"prompt {n}", ts_ms=ts_ms, metadata=meta),
        ConversationMessage(model_id="m1", role="assistant", content=f"reply {n}", ts_ms=ts_ms, metadata=meta),
        DecisionCycle(model_id="m1", cycle_number=n, executed_at=at, success=kw.pop("success", True),
                      finished_at=datetime.fromtimestamp((ts_ms + 1500) / 1000, tz=timezone.utc),
                      run_id="run-1", cot_trace=f"thinking {n}", cot_trace_summary=f"summary {n}",
                      prompt_digest="sha256:ab", template_digest="sha256:cd", **kw),
    ]


async def test_cycles_are_served_in_nof1s_shape_newest_first(clock_rt, client):
    svc = IngestService(clock_rt)
    await svc.ingest([f.model("m1")])
    decisions = [{"symbol": "BTC", "signal": "short", "quantity": 0.13, "leverage": 15, "profit_target": 102321.7,
                  "stop_loss": 109362.4, "invalidation_condition": "4h close above 110k", "confidence": 0.62,
                  "risk_usd": 300, "justification": "below EMA20", "status": "executed", "oid": 7},
                 {"symbol": "ETH", "signal": "hold", "status": "held"}]
    report = await svc.ingest([*_cycle(1, T, decisions=decisions),
                               *_cycle(2, T + 180_000, decisions=[], success=False, error_message="no JSON"),
                               ConversationMessage(model_id="m1", role="user", content="an imported chat", ts_ms=T)])
    assert report.ok
    items = (await client.get("/api/conversations")).json()["conversations"]
    assert [i.get("cycle_id") for i in items] == [2, 1, None]
    newest, first, legacy = items
    assert (newest["success"], newest["error"], newest["llm_response"]) == (False, "no JSON", {})
    assert first == {
        "id": "m1_1", "model_id": "m1", "cycle_id": 1, "run_id": "run-1", "timestamp": T / 1000,
        "inserted_at": (T + 1500) / 1000, "user_prompt": "prompt 1", "cot_trace": "thinking 1",
        "cot_trace_summary": "summary 1", "success": True, "error": None,
        "llm_response": {
            "BTC": {"coin": "BTC", "signal": "sell_to_enter", "quantity": 0.13, "leverage": 15,
                    "profit_target": 102321.7, "stop_loss": 109362.4,
                    "invalidation_condition": "4h close above 110k", "confidence": 0.62, "risk_usd": 300,
                    "justification": "below EMA20"},
            "ETH": {"coin": "ETH", "signal": "hold"}},
        "messages": [{"role": "system", "content": "You trade.", "timestamp": T / 1000},
                     {"role": "user", "content": "prompt 1", "timestamp": T / 1000},
                     {"role": "assistant", "content": "reply 1", "timestamp": T / 1000}],
    }
    assert legacy == {"model_id": "m1", "messages": [{"role": "user", "content": "an imported chat",
                                                      "timestamp": T / 1000}]}


async def test_the_number_of_cycles_per_model_is_configured(clock_rt, client):
    clock_rt.config.root.api.conversation_cycles = 2
    svc = IngestService(clock_rt)
    await svc.ingest([f.model("m1")])
    await svc.ingest([ev for n in range(1, 5) for ev in _cycle(n, T + n * 1000, decisions=[])])
    items = (await client.get("/api/conversations")).json()["conversations"]
    assert [i["cycle_id"] for i in items] == [4, 3]
