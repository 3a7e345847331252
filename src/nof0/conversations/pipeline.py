"""Conversations & journals (design 2.4; 4.1 "Conversation message"): messages are inserted into
``conversation_messages`` (each model's ``main`` thread), then the model's Redis window is rebuilt
(append + trim, as of the committed truth); decision cycles are upserted into ``decision_cycles`` and
the latest one per model mirrored to ``nof0:decision:last:{model_id}``.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from nof0.conversations import repository as repo
from nof0.conversations.cache import publish_conversations, publish_last_decisions
from nof0.db.arrays import last_by_key
from nof0.kernel.events import ConversationMessage, DecisionCycle
from nof0.kernel.stage import Staged
from nof0.runtime import Runtime

__all__ = ["stage_messages", "stage_decision_cycles"]


async def stage_messages(rt: Runtime, conn: AsyncConnection, events: list[ConversationMessage]) -> Staged:
    threads = await repo.ensure_conversations(conn, [e.model_id for e in events])
    new = await repo.insert_messages(conn, [
        {"conversation_id": threads[e.model_id], "role": e.role, "content": e.content, "ts_ms": e.ts_ms,
         "metadata": e.metadata} for e in events
    ])
    staged = Staged(changed=len(new), duplicates=len(events) - len(new))
    by_thread = {cid: model for model, cid in threads.items()}
    models = sorted({by_thread[cid] for cid in new})
    staged.models = set(models)
    return staged.then(publish_conversations, *models) if models else staged


async def stage_decision_cycles(rt: Runtime, conn: AsyncConnection, events: list[DecisionCycle]) -> Staged:
    rows = last_by_key(
        ({"model_id": e.model_id, "cycle_number": e.cycle_number, "prompt_digest": e.prompt_digest,
          "cot_trace": e.cot_trace, "decisions": e.decisions, "success": e.success,
          "error_message": e.error_message, "executed_at": e.executed_at, "cot_trace_summary": e.cot_trace_summary,
          "template_digest": e.template_digest, "run_id": e.run_id, "finished_at": e.finished_at} for e in events),
        lambda r: (r["model_id"], r["cycle_number"]),
    )
    changed = await repo.upsert_decision_cycles(conn, rows)
    staged = Staged(changed=len(changed), duplicates=len(events) - len(changed))
    staged.models = set(changed)
    return staged.then(publish_last_decisions, *sorted(set(changed))) if changed else staged
