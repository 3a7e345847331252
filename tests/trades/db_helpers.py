"""What the fill book tests share: ingest events that must all be accepted, read rows back."""

from __future__ import annotations

from nof0.ingest.service import IngestService


async def ingest(rt, *events):
    report = await IngestService(rt).ingest(list(events))
    assert report.rejected == 0, [str(r) for r in report.rejections]
    return report


async def rows(rt, sql: str, *params) -> list[tuple]:
    async with rt.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(sql, params)
        return [tuple(r.values()) for r in await cur.fetchall()]
