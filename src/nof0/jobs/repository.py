"""SQL of scheduled jobs: the view refresh function and the ``job_runs`` ledger. Never commits."""

from __future__ import annotations

from psycopg import AsyncConnection

__all__ = ["refresh_views_nof0", "record_job_start", "record_job_end", "list_job_runs"]


async def refresh_views_nof0(conn: AsyncConnection) -> None:
    await conn.execute("SELECT refresh_views_nof0()")


async def record_job_start(conn: AsyncConnection, job: str) -> None:
    await conn.execute(
        """
        INSERT INTO job_runs (job, last_started_at, last_status) VALUES (%s, now(), 'running')
        ON CONFLICT (job) DO UPDATE SET last_started_at = now(), last_status = 'running'
        """,
        (job,),
    )


async def record_job_end(conn: AsyncConnection, job: str, duration_ms: float, error: str | None) -> None:
    await conn.execute(
        """
        UPDATE job_runs
           SET last_finished_at = now(), last_duration_ms = %s,
               last_status = CASE WHEN %s::text IS NULL THEN 'ok' ELSE 'failed' END,
               last_error = %s, runs = runs + 1,
               failures = failures + CASE WHEN %s::text IS NULL THEN 0 ELSE 1 END
         WHERE job = %s
        """,
        (duration_ms, error, error, error, job),
    )


async def list_job_runs(conn: AsyncConnection) -> list[dict]:
    cur = await conn.execute("SELECT * FROM job_runs ORDER BY job")
    return await cur.fetchall()
