"""SQL of ingestion itself: the dead-letter table ``ingest_dead_letters``. Never commits.

A rejected event is kept with its raw text and the reason. The text is capped (its first
:data:`~nof0.kernel.lines.HEAD_BYTES` bytes and a note of its full length: a hostile line must not
bloat the table) while ``raw_md5`` is the md5 of the whole text and unique, so a replayed bad line is
recorded once. Whatever a producer sent is stored as valid text: NUL and lone surrogates, which Postgres
text cannot hold, are written as ``\\u0000`` / ``\\udc80``-style escapes.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from psycopg import AsyncConnection

from nof0.kernel.decode import Rejection
from nof0.kernel.lines import HEAD_BYTES

__all__ = ["insert_dead_letters", "list_dead_letters", "storable_text", "capped_raw"]


def storable_text(text: str | None) -> str | None:
    """``text`` as Postgres can store it: NUL and lone surrogates escaped."""
    if text is None or (text.isascii() and "\x00" not in text):
        return text
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def capped_raw(r: Rejection) -> tuple[str, str]:
    """(the raw text to store, the md5 of the whole raw text)."""
    text = storable_text(r.raw) or ""
    data = text.encode("utf-8")
    md5 = r.raw_md5 or hashlib.md5(data).hexdigest()
    if len(data) <= HEAD_BYTES:
        return text, md5
    head = data[:HEAD_BYTES].decode("utf-8", "ignore")  # never half a character
    return f"{head}\n[... truncated: {len(data)} bytes in total]", md5


async def insert_dead_letters(conn: AsyncConnection, source: str, rejections: Sequence[Rejection]) -> int:
    if not rejections:
        return 0
    raws = [capped_raw(r) for r in rejections]
    cur = await conn.execute(
        """
        INSERT INTO ingest_dead_letters (source, line_no, event_type, field, reason, raw, raw_md5)
        SELECT * FROM unnest(%b::text[], %b::int[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[])
        ON CONFLICT ON CONSTRAINT uq_dead_letters_raw DO NOTHING
        """,
        (
            [storable_text(source)] * len(rejections),
            [r.line if r.line is not None and r.line < 2**31 else None for r in rejections],
            [storable_text(r.event_type) for r in rejections],
            [storable_text(r.field) for r in rejections],
            [storable_text(_reason(r)) for r in rejections],
            [raw for raw, _ in raws],
            [md5 for _, md5 in raws],
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
