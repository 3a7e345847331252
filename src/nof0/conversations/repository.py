"""SQL of conversations and journals: ``conversations``, ``conversation_messages``,
``decision_cycles`` (design 2.2, 2.4 "Conversations & Journals"). Never commits.

A message's natural key is (conversation, ts_ms, role, md5(content)); a cycle's is
(model_id, cycle_number). Replays are no-ops.
"""

from __future__ import annotations

from typing import Any, Sequence

from psycopg import AsyncConnection

from nof0.db.arrays import unnest_params, upsert_sql

__all__ = ["ensure_conversations", "insert_messages", "list_recent_messages", "upsert_decision_cycles",
           "list_last_decisions", "get_cycle_stats"]

_CYCLE_TYPES = {
    "model_id": "text", "cycle_number": "int", "prompt_digest": "text", "cot_trace": "text", "decisions": "jsonb",
    "success": "bool", "error_message": "text", "executed_at": "timestamptz", "cot_trace_summary": "text",
    "template_digest": "text", "run_id": "text", "finished_at": "timestamptz",
}
_UPSERT_CYCLES = upsert_sql("decision_cycles", _CYCLE_TYPES, "model_id, cycle_number", returning="t.model_id")


async def ensure_conversations(conn: AsyncConnection, model_ids: Sequence[str]) -> dict[str, int]:
    """The id of each model's main thread, created when missing."""
    ids = sorted(set(model_ids))
    await conn.execute(
        "INSERT INTO conversations (model_id) SELECT unnest(%b::text[]) ON CONFLICT (model_id, thread) DO NOTHING",
        (ids,),
    )
    cur = await conn.execute(
        "SELECT id, model_id FROM conversations WHERE thread = 'main' AND model_id = ANY(%b::text[])", (ids,)
    )
    return {r["model_id"]: r["id"] for r in await cur.fetchall()}


async def insert_messages(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """rows: conversation_id, role, content, ts_ms, metadata. Returns the conversation ids of new messages."""
    cur = await conn.execute(
        """
        INSERT INTO conversation_messages (conversation_id, role, content, ts_ms, metadata)
        SELECT c, r, t, ts, coalesce(m, '{}'::jsonb)
          FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::bigint[], %b::jsonb[]) AS v(c, r, t, ts, m)
        ON CONFLICT DO NOTHING
        RETURNING conversation_id
        """,
        unnest_params(rows, {"conversation_id": "bigint", "role": "text", "content": "text", "ts_ms": "bigint",
                             "metadata": "jsonb"}),
    )
    return [r["conversation_id"] for r in await cur.fetchall()]


async def list_recent_messages(conn: AsyncConnection, model_ids: Sequence[str], window: int) -> list[dict[str, Any]]:
    """The last ``window`` messages of each model's main thread, oldest first.

    Ties at one millisecond are ordered system, user, assistant, then by content, never by arrival,
    so the window is the same whatever order the messages came in.
    """
    cur = await conn.execute(
        """
        SELECT c.model_id, w.role, w.content, w.ts_ms
          FROM conversations c
          CROSS JOIN LATERAL (
              SELECT role, content, ts_ms,
                     CASE role WHEN 'system' THEN 0 WHEN 'user' THEN 1 ELSE 2 END AS role_rank, content_md5
                FROM conversation_messages m
               WHERE m.conversation_id = c.id
               ORDER BY ts_ms DESC NULLS LAST, role_rank DESC, content_md5 DESC
               LIMIT %s
          ) AS w
         WHERE c.thread = 'main' AND c.model_id = ANY(%b::text[])
         ORDER BY c.model_id, w.ts_ms NULLS FIRST, w.role_rank, w.content_md5
        """,
        (window, list(model_ids)),
    )
    return await cur.fetchall()


async def upsert_decision_cycles(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Insert or update cycles by (model_id, cycle_number); returns the model id of each changed cycle."""
    cur = await conn.execute(_UPSERT_CYCLES, unnest_params(rows, _CYCLE_TYPES))
    return [r["model_id"] for r in await cur.fetchall()]


async def list_last_decisions(conn: AsyncConnection, model_ids: Sequence[str]) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """
        SELECT DISTINCT ON (model_id) model_id, cycle_number, prompt_digest, cot_trace, decisions, success,
               error_message, executed_at, cot_trace_summary, template_digest, run_id, finished_at
          FROM decision_cycles WHERE model_id = ANY(%b::text[])
         ORDER BY model_id, executed_at DESC, cycle_number DESC
        """,
        (list(model_ids),),
    )
    return await cur.fetchall()


async def get_cycle_stats(conn: AsyncConnection, model_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per model: its highest cycle number, its number of cycles and its first cycle's time (a restarted
    manager continues the numbering and the minutes since start from these)."""
    cur = await conn.execute(
        """
        SELECT model_id, max(cycle_number) AS last_cycle, count(*) AS cycles, min(executed_at) AS first_at
          FROM decision_cycles WHERE model_id = ANY(%b::text[]) GROUP BY model_id
        """,
        (list(model_ids),),
    )
    return {r["model_id"]: r for r in await cur.fetchall()}
