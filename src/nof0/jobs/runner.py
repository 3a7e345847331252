"""Run one job and record it (design 2.5, 4.3): the ``job_runs`` ledger (last start, finish, duration,
status, error, run and failure counts) and the job metrics (duration histogram, failures, time of the
last success).

A failing job is logged and recorded, never raised: the scheduler goes on with its next run. The
ledger itself is best effort too: a job still runs when Postgres cannot record its start.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import msgspec

from nof0.jobs import repository as repo
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["JobOutcome", "run_recorded"]

log = get_logger("nof0.jobs")

JobFn = Callable[[Runtime], Awaitable[Any]]


class JobOutcome(msgspec.Struct, kw_only=True):
    job: str
    ok: bool
    duration_s: float
    error: str | None = None
    result: Any = None


async def run_recorded(rt: Runtime, job: str, fn: JobFn) -> JobOutcome:
    await _record(rt, job, repo.record_job_start, job)
    started = time.perf_counter()
    try:
        result = await fn(rt)
    except asyncio.CancelledError:
        await _record(rt, job, repo.record_job_end, job, _ms_since(started), "cancelled")
        raise
    except Exception as exc:  # a job failure must not stop the scheduler
        duration = time.perf_counter() - started
        error = f"{type(exc).__name__}: {exc}"
        log.error("job_failed", job=job, seconds=round(duration, 3), error=error, exc_info=True)
        rt.metrics.job_seconds.labels(job).observe(duration)
        rt.metrics.job_failures.labels(job).inc()
        await _record(rt, job, repo.record_job_end, job, duration * 1000, error)
        # a job may attach what it did manage to do (e.g. the analytics of the models that did not fail)
        return JobOutcome(job=job, ok=False, duration_s=duration, error=error, result=getattr(exc, "summary", None))
    duration = time.perf_counter() - started
    log.info("job_done", job=job, seconds=round(duration, 3))
    rt.metrics.job_seconds.labels(job).observe(duration)
    rt.metrics.job_last_success.labels(job).set(rt.clock.now_ms() / 1000)
    await _record(rt, job, repo.record_job_end, job, duration * 1000, None)
    return JobOutcome(job=job, ok=True, duration_s=duration, result=result)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def _record(rt: Runtime, job: str, statement: Callable[..., Awaitable[None]], *args: Any) -> None:
    try:
        async with rt.pool.connection() as conn, conn.transaction():
            await statement(conn, *args)
    except Exception as exc:  # the ledger is bookkeeping: losing a line must not lose the run
        log.warning("job_ledger_write_failed", job=job, error=f"{type(exc).__name__}: {exc}")
