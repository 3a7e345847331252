"""The partitions job (design 2.5 "partition price_ticks and account_equity_snapshots by month"):
keep the monthly partitions of migration 010 ahead of the data.

Each run, for each partitioned table, in one short transaction per month:

* creates the partitions of the current month (``rt.clock``) and of the ``jobs.partitions_ahead``
  months after it, so a month's rows land in their own partition from its first millisecond;
* moves rows that landed in the default partition (a replay of old history, a clock far ahead) into
  their own month, creating it: the default partition stays empty, so month pruning and whole-month
  retention stay exact.

Creating months ahead keeps the insert path free of DDL: ingest never waits on a partition being made,
and an insert that finds no month goes to the default partition instead of failing. The job runs at
start-up (``nof0 run``) and every ``jobs.partitions_every``; creating a month takes a short lock on
the default partition, bounded by ``lock_timeout`` (a busy table is retried on the next run).
"""

from __future__ import annotations

from typing import Any

from nof0.jobs import partitions_repository as repo
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["PARTITIONS", "partitions_job", "ensure_partitions", "adopt_default_rows"]

PARTITIONS = "partitions"
LOCK_TIMEOUT_S = 5.0

log = get_logger("nof0.jobs.partitions")


async def ensure_partitions(rt: Runtime, table: repo.PartitionedTable, months_ahead: int) -> list[str]:
    """This month's and the next ``months_ahead`` months' partitions; returns the ones created."""
    async with rt.pool.connection() as conn, conn.transaction():
        await repo.set_lock_timeout(conn, LOCK_TIMEOUT_S)
        return await repo.ensure_months(conn, table, rt.clock.now_ms(), months_ahead)


async def adopt_default_rows(rt: Runtime, table: repo.PartitionedTable) -> list[str]:
    """Move the default partition's rows into their months (one transaction each); returns the months made."""
    made = []
    async with rt.pool.connection() as conn:
        async with conn.transaction():
            months = await repo.months_in_default(conn, table)
        for lo_ms in months:
            async with conn.transaction():
                await repo.set_lock_timeout(conn, LOCK_TIMEOUT_S)
                if (name := await repo.ensure_month(conn, table, lo_ms)) is not None:
                    made.append(name)
    return made


async def partitions_job(rt: Runtime) -> dict[str, Any]:
    """The scheduler's ``partitions`` job: a JSON-able summary of what each table got."""
    ahead = rt.config.root.jobs.partitions_ahead
    summary: dict[str, Any] = {}
    for table in repo.PARTITIONED_TABLES.values():
        created = await ensure_partitions(rt, table, ahead)
        adopted = await adopt_default_rows(rt, table)
        summary[table.name] = {"created": created + adopted}
        if created or adopted:
            log.info("partitions_created", table=table.name, partitions=created + adopted)
    return summary
