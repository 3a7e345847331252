"""The ``llm_call`` stage: calls are upserted into ``llm_calls`` by their key. Nothing is cached in
Redis: the budgets read Postgres (the truth survives restarts; a cached sum could lag it)."""

from __future__ import annotations

from psycopg import AsyncConnection

from nof0.db.arrays import last_by_key
from nof0.kernel.events import LlmCall
from nof0.kernel.stage import Staged
from nof0.llm_calls import repository as repo
from nof0.runtime import Runtime

__all__ = ["stage_llm_calls"]


async def stage_llm_calls(rt: Runtime, conn: AsyncConnection, events: list[LlmCall]) -> Staged:
    rows = last_by_key(
        ({name: getattr(e, name) for name in e.__struct_fields__} for e in events),
        lambda r: (r["trader_id"], r["cycle_number"], r["attempt"]),
    )
    changed = await repo.upsert_llm_calls(conn, rows)
    staged = Staged(changed=len(changed), duplicates=len(events) - len(changed))
    staged.models = set(changed)
    return staged
