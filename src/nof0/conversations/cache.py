"""Conversations and decisions in Redis (design 3.2): ``nof0:conversations:{model_id}`` (the recent
window, oldest first, ``message_json`` values) and ``nof0:decision:last:{model_id}``."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from nof0.cache.write import publish_lists, set_json
from nof0.conversations import repository as repo
from nof0.conversations.payloads import message_json
from nof0.runtime import Runtime
from nof0.timefmt import dt_to_s

__all__ = ["publish_conversations", "publish_last_decisions", "decision_json"]


async def publish_conversations(rt: Runtime, conn: AsyncConnection, model_ids: list[Any]) -> None:
    """The window is rebuilt from Postgres: appending then trimming, but independent of arrival order."""
    wanted = sorted(set(model_ids))
    async with conn.transaction():
        rows = await repo.list_recent_messages(conn, wanted, rt.config.root.ingest.conversation_window)
    await publish_lists(rt.redis, rt.keys.conversations, wanted, rows, "model_id", message_json)


def decision_json(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["executed_at"] = dt_to_s(row["executed_at"])
    if "finished_at" in out:
        out["finished_at"] = dt_to_s(row["finished_at"])
    return out


async def publish_last_decisions(rt: Runtime, conn: AsyncConnection, model_ids: list[Any]) -> None:
    async with conn.transaction():
        rows = await repo.list_last_decisions(conn, sorted(set(model_ids)))
    pipe = rt.redis.pipeline(transaction=False)
    for row in rows:
        set_json(pipe, rt.keys.decision_last(row["model_id"]), decision_json(row))
    await pipe.execute()
