"""The retention job of design 2.5 ("Archival"; price_ticks "keep 30 days in primary table; archive
older rows to cold storage"): old rows are written to gzip'd CSV files (``archive.py``) and then leave
their table.

* **Partitioned tables** (``price_ticks``, ``account_equity_snapshots``; migration 010): whole months.
  A month partition whose end is older than ``jobs.retention.<table>_days`` is archived and dropped in
  one transaction: block writes to it, COPY it into its file (``<table>/<partition>.csv.gz``), fsync and
  close the file, DROP the partition. No row is deleted one by one, so nothing is left to vacuum. Rows
  waiting in the default partition are first moved into their months (``partitions.py``), so they age
  out with their month.
* **decision_cycles** (not partitioned): batches of at most ``batch_rows`` rows, each one REPEATABLE
  READ transaction: pick the batch (by id, older than the cutoff), COPY it into its file, fsync and
  close the file, then DELETE the same rows (same predicate, same snapshot) and check the count.

Any failure before the commit (a file that cannot be written, a full disk, a concurrent change, a lock
not granted within ``lock_timeout``) rolls the DROP or DELETE back: a row is never gone without being
in a complete archive file. ``max_batches_per_run`` bounds the batches (or months) of one run, so a
large backlog drains over several runs instead of holding the scheduler (which runs one job at a time).

``price_latest`` keeps every symbol's latest price whatever its age. A days value of 0 keeps that
table's rows forever. A session advisory lock per table keeps two processes (``nof0 run`` and ``nof0
retention``) from archiving the same table at once; the second one reports the table as ``locked``
and moves on.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Literal

import msgspec
from psycopg import AsyncConnection

from nof0.config import RetentionSettings
from nof0.jobs import partitions_repository as months
from nof0.jobs import retention_repository as repo
from nof0.jobs.archive import archive_path, month_archive_path, open_archive
from nof0.jobs.partitions import LOCK_TIMEOUT_S, adopt_default_rows
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["RETENTION", "TableRetention", "RetentionFailed", "run_retention", "retention_job"]

RETENTION = "retention"
_DAY_MS = 86_400_000

log = get_logger("nof0.jobs.retention")


class TableRetention(msgspec.Struct, kw_only=True):
    """What one run did to one table."""

    table: str
    days: int
    # disabled: days is 0; locked: another process is archiving it; done: nothing older is left;
    # backlog: max_batches_per_run reached, the next run goes on
    status: Literal["disabled", "locked", "done", "backlog", "failed"] = "done"
    cutoff_ms: int | None = None
    rows: int = 0
    files: list[str] = msgspec.field(default_factory=list)


class RetentionFailed(RuntimeError):
    """A batch failed (and was rolled back); ``summary`` has what the run archived before it."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


class BatchMismatch(RuntimeError):
    """The DELETE would remove other rows than the ones archived: the batch is rolled back."""


# the order of a run's reports
_TABLES = ("price_ticks", "decision_cycles", "account_equity_snapshots")


def _days(settings: RetentionSettings, table: str) -> int:
    return {"price_ticks": settings.price_ticks_days, "decision_cycles": settings.decision_cycles_days,
            "account_equity_snapshots": settings.account_equity_snapshots_days}[table]


async def run_retention(rt: Runtime) -> list[TableRetention]:
    settings = rt.config.root.jobs.retention
    now_ms = rt.clock.now_ms()
    reports: list[TableRetention] = []
    for name in _TABLES:
        report = TableRetention(table=name, days=_days(settings, name))
        reports.append(report)
        if report.days == 0:
            report.status = "disabled"
            continue
        report.cutoff_ms = now_ms - report.days * _DAY_MS
        try:
            if name in months.PARTITIONED_TABLES:
                await _retain_months(rt, months.PARTITIONED_TABLES[name], report, settings)
            else:
                await _retain_table(rt, repo.RETAINED_TABLES[name], report, settings)
        except Exception as exc:
            report.status = "failed"
            raise RetentionFailed(f"{name}: {type(exc).__name__}: {exc}", _summary(reports)) from exc
    return reports


async def retention_job(rt: Runtime) -> dict[str, Any]:
    """The scheduler's ``retention`` job: a JSON-able summary per table."""
    return _summary(await run_retention(rt))


def _summary(reports: list[TableRetention]) -> dict[str, Any]:
    return {"tables": msgspec.to_builtins(reports)}


@asynccontextmanager
async def _table_lock(conn: AsyncConnection, table: str, report: TableRetention) -> AsyncIterator[bool]:
    """The table's session lock for the whole run; False (status ``locked``) when another process has it."""
    async with conn.transaction():
        locked = await repo.try_lock_table(conn, table)
    if not locked:
        report.status = "locked"
        log.info("retention_table_locked", table=table)
        yield False
        return
    try:
        yield True
    finally:
        try:
            async with conn.transaction():
                await repo.unlock_table(conn, table)
        except Exception as exc:  # a broken connection took its session lock with it
            log.warning("retention_unlock_failed", table=table, error=f"{type(exc).__name__}: {exc}")


async def _retain_table(rt: Runtime, table: repo.RetainedTable, report: TableRetention,
                        settings: RetentionSettings) -> None:
    async with rt.pool.connection() as conn, _table_lock(conn, table.name, report) as locked:
        if not locked:
            return
        for _ in range(settings.max_batches_per_run):
            if await _archive_batch(rt, conn, table, report, settings.batch_rows) < settings.batch_rows:
                report.status = "done"  # a short batch was the last one
                return
        report.status = "backlog"


async def _retain_months(rt: Runtime, table: months.PartitionedTable, report: TableRetention,
                         settings: RetentionSettings) -> None:
    cutoff_ms = report.cutoff_ms
    assert cutoff_ms is not None
    async with rt.pool.connection() as conn, _table_lock(conn, table.name, report) as locked:
        if not locked:
            return
        await adopt_default_rows(rt, table)  # rows waiting in the default partition age with their month
        async with conn.transaction():
            expired = [m for m in await months.list_months(conn, table) if m.hi_ms <= cutoff_ms]
        for month in expired[: settings.max_batches_per_run]:
            await _archive_month(rt, conn, table, month, report)
        report.status = "backlog" if len(expired) > settings.max_batches_per_run else "done"


async def _archive_month(rt: Runtime, conn: AsyncConnection, table: months.PartitionedTable,
                         month: months.MonthPartition, report: TableRetention) -> None:
    """Archive one whole month partition and drop it, in one transaction (an empty month is just dropped)."""
    path = month_archive_path(rt.config.archive_dir, table.name, month.name)
    async with conn.transaction():
        await months.set_lock_timeout(conn, LOCK_TIMEOUT_S)
        await months.lock_partitions(conn, table)
        await months.block_writes(conn, month)
        rows = await months.count_month(conn, month)
        if rows:
            async with open_archive(path) as out:
                async for chunk in months.copy_month(conn, table, month):
                    await out.write(chunk)
        # the file is complete, fsync'd and closed: only now may the month go
        await months.drop_month(conn, month)
    if rows:
        report.rows += rows
        report.files.append(str(path))
        rt.metrics.retention_rows.labels(table.name).inc(rows)
    log.info("retention_month_archived", table=table.name, partition=month.name, rows=rows,
             first_ms=month.lo_ms, last_ms=month.hi_ms - 1, file=str(path) if rows else None)


async def _archive_batch(rt: Runtime, conn: AsyncConnection, table: repo.RetainedTable, report: TableRetention,
                         limit: int) -> int:
    """Archive and delete one batch of at most ``limit`` rows; returns its size (0: nothing left)."""
    cutoff_ms = report.cutoff_ms
    assert cutoff_ms is not None
    async with conn.transaction():
        await repo.begin_repeatable_read(conn)
        batch = await repo.next_batch(conn, table, cutoff_ms, limit)
        if batch is None:
            return 0
        path = archive_path(rt.config.archive_dir, table.name, batch.first_id, batch.last_id)
        async with open_archive(path) as out:
            async for chunk in repo.copy_batch(conn, table, cutoff_ms, batch):
                await out.write(chunk)
        # the file is complete, fsync'd and closed: only now may its rows go
        deleted = await repo.delete_batch(conn, table, cutoff_ms, batch)
        if deleted != batch.rows:
            raise BatchMismatch(f"{table.name} ids {batch.first_id}-{batch.last_id}: archived {batch.rows} rows,"
                                f" the delete matched {deleted}")
    report.rows += batch.rows
    report.files.append(str(path))
    rt.metrics.retention_rows.labels(table.name).inc(batch.rows)
    log.info("retention_batch_archived", table=table.name, rows=batch.rows, first_id=batch.first_id,
             last_id=batch.last_id, first_ms=batch.first_ms, last_ms=batch.last_ms, file=str(path))
    return batch.rows
