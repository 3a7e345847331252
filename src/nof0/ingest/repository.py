"""SQL of ingestion itself: the dead-letter table ``ingest_dead_letters``. Never commits.

A rejected event is kept with its raw text and the reason; the md5 of the raw text is unique, so a
replayed bad line is recorded once.
"""

from __future__ import annotations

from typing import Any, Sequence

from psycopg import AsyncConnection

from nof0.ingest.decode import Rejection

__all__ = ["insert_dead_letters", "list_dead_letters"]


async def insert_dead_letters(conn: AsyncConnection, source: str, rejections: Sequence[Rejection]) -> int:
    if not rejections:
        return 0
    cur = await conn.execute(
        """
        INSERT INTO ingest_dead_letters (source, line_no, event_type, field, reason, raw)
        SELECT * FROM unnest(%b::text[], %b::int[], %b::text[], %b::text[], %b::text[], %b::text[])
        ON CONFLICT ON CONSTRAINT uq_dead_letters_raw DO NOTHING
        """,
        (
            [source] * len(rejections),
            [r.line if r.line is not None and r.line < 2**31 else None for r in rejections],
            [r.event_type for r in rejections],
            [r.field for r in rejections],
            [_reason(r) for r in rejections],
            [r.raw.replace("\x00", "\\u0000") for r in rejections],
        ),
    )
    return cur.rowcount


def _reason(r: Rejection) -> str:
    # the value is part of the reason so the table alone explains the rejection
    return str(r).split(": ", 1)[1] if ": " in str(r) else str(r)


async def list_dead_letters(conn: AsyncConnection, limit: int = 100) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT source, line_no, event_type, field, reason, raw, received_at FROM ingest_dead_letters"
        " ORDER BY id DESC LIMIT %s",
        (limit,),
    )
    return await cur.fetchall()
