"""The analytics batch job (design 2.4 Analytics), design 4.1 "Analytics batch": recompute stats ->
upsert ``model_analytics`` -> refresh views -> update the Redis analytics keys, with the refresh
started beside the statistics (below).

For each model it computes nof1's ModelAnalytics object with the single computation
(:func:`nof0.analytics.metrics.compute_model_analytics`) from the facts in Postgres. Models are
taken under the design 3.3 lock ``nof0:lock:analytics.{model_id}``: a model another worker is
computing is skipped, so two workers never compute the same model at once (the locks are extended
while the job runs, since it can outlast their short TTL).

The view refresh runs beside the statistics (the views read only fact tables), and Redis is written
after both. The trades are never read into Python: Postgres computes their statistics for every model in one
aggregate pass and one small query per model (``_trade_stats``, in REPEATABLE READ on one snapshot). The other
facts (decisions, positions, conversations) are read per batch of models, one query per table, in one
REPEATABLE READ transaction per batch; the arithmetic runs in a worker thread so the service's event
loop keeps serving. Redis
is written after the commit, best effort (a Redis error is logged and counted; the rows are the truth).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from contextlib import AsyncExitStack
from datetime import datetime, timezone
from typing import Any, Iterable

import msgspec
from redis import RedisError

from nof0.analytics import cache, repository as repo
from nof0.analytics.facts import ModelFacts, group_facts, model_analytics
from nof0.analytics.metrics import TradeStats, stats_of_cells
from nof0.analytics.publish import note_redis_failure
from nof0.cache.guards import hold_locks
from nof0.cache.keys import Key
from nof0.jobs.views import refresh_views
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["AnalyticsReport", "run_analytics", "compute_payloads", "analytics_lock", "BATCH_MODELS"]

log = get_logger("nof0.analytics.job")

# Models read and computed together. Bounds memory (every decision cycle and position of a batch is
# in memory at once) while keeping the number of queries at 4 per batch.
BATCH_MODELS = 16
# Connections computing the medians beside the cells pass: with the cells pass's two parallel workers,
# enough processes to keep two cores busy until both are done; more only add switching.
_MEDIAN_CONNECTIONS = 2
_LOGGED_PROBLEMS = 5  # invalid decisions logged per run; all are counted


class AnalyticsReport(msgspec.Struct, kw_only=True):
    computed: list[str] = msgspec.field(default_factory=list)
    skipped_locked: list[str] = msgspec.field(default_factory=list)  # another worker holds them
    failed: dict[str, str] = msgspec.field(default_factory=dict)  # model -> error
    unknown: list[str] = msgspec.field(default_factory=list)  # asked for, not in ``models``
    trades: int = 0
    decisions: int = 0
    invalid_decisions: int = 0
    published: bool = False  # Redis written
    redis_error: str | None = None
    read_s: float = 0.0
    compute_s: float = 0.0
    write_s: float = 0.0
    refresh_s: float = 0.0
    publish_s: float = 0.0
    total_s: float = 0.0


async def run_analytics(
    rt: Runtime, model_ids: Iterable[str] | None = None, *, batch_models: int = BATCH_MODELS
) -> AnalyticsReport:
    """Compute, persist and publish the analytics of ``model_ids`` (default: every model)."""
    started = time.perf_counter()
    report = AnalyticsReport()
    now_ms = rt.clock.now_ms()

    async with rt.pool.connection() as conn, conn.transaction():
        known = await repo.list_model_ids(conn)
    wanted = known
    if model_ids is not None:
        asked = set(model_ids)
        wanted = [m for m in known if m in asked]
        report.unknown = sorted(asked.difference(known))

    locks = {m: analytics_lock(rt, m) for m in wanted}
    payloads: dict[str, dict[str, Any]] = {}
    async with AsyncExitStack() as stack:
        try:
            held = await stack.enter_async_context(hold_locks(rt.redis, list(locks.values())))
        except RedisError as exc:
            # Fail open: without Redis no worker can coordinate, but the upsert below never lets an
            # older computation replace a newer one, so computing anyway is safe.
            report.redis_error = note_redis_failure(rt, "analytics.lock", exc)
            held = {k.name for k in locks.values()}
        mine = [m for m in wanted if locks[m].name in held]
        report.skipped_locked = [m for m in wanted if locks[m].name not in held]

        # The views read only fact tables (never model_analytics), so they are refreshed while the
        # statistics are computed, on a connection of their own, rather than after the upsert: the rows
        # they get are the same, both are CPU work of separate Postgres processes, and one after the
        # other left a core idle (the refresh is mostly serial). Redis is still written after both.
        refreshing = asyncio.ensure_future(_refresh(rt, report)) if mine and _refresh_beside(rt) else None
        try:
            t = time.perf_counter()
            stats = await _trade_stats(rt, mine, every_model=len(mine) == len(known)) if mine else {}
            report.read_s += time.perf_counter() - t
            report.trades += sum(s.total_trades for s in stats.values())
            step = max(1, batch_models)
            for i in range(0, len(mine), step):
                payloads.update(await _analyse_batch(rt, mine[i : i + step], stats, now_ms, report))
        except BaseException:
            if refreshing is not None:  # no statistics, no refresh (as before): stopped, rolled back
                refreshing.cancel()
                await asyncio.gather(refreshing, return_exceptions=True)
            raise
        if refreshing is not None:
            await refreshing
        elif payloads:
            await _refresh(rt, report)
        if payloads:
            await _publish(rt, payloads, report)

    rt.metrics.analytics_models.labels("computed").inc(len(report.computed))
    rt.metrics.analytics_models.labels("skipped_locked").inc(len(report.skipped_locked))
    rt.metrics.analytics_models.labels("failed").inc(len(report.failed))
    report.total_s = time.perf_counter() - started
    log.info(
        "analytics_done", computed=len(report.computed), skipped_locked=len(report.skipped_locked),
        failed=len(report.failed), trades=report.trades, seconds=round(report.total_s, 3),
    )
    return report


def _refresh_beside(rt: Runtime) -> bool:
    """A connection is left for the refresh while the statistics hold theirs."""
    return rt.pool.max_size > _MEDIAN_CONNECTIONS + 1


async def _refresh(rt: Runtime, report: AnalyticsReport) -> None:
    t = time.perf_counter()
    await refresh_views(rt)
    report.refresh_s = time.perf_counter() - t


def analytics_lock(rt: Runtime, model_id: str) -> Key:
    """``nof0:lock:analytics.{model_id}``; a model id too long for a key part (ids may have 64
    characters, lock resources too) is replaced by a digest of it, still one lock per model."""
    resource = f"analytics.{model_id}"
    if len(resource) > 64:
        resource = f"analytics.sha1-{hashlib.sha1(model_id.encode()).hexdigest()}"
    return rt.keys.lock(resource)


async def _trade_stats(rt: Runtime, model_ids: list[str], *, every_model: bool = False) -> dict[str, TradeStats]:
    """Every model's trade statistics from Postgres, all read on one snapshot: the cells' aggregate
    pass (parallel workers) on one connection while the per-model medians, one process per connection,
    run on up to ``_MEDIAN_CONNECTIONS`` others, each with a share of the models (the medians alone
    took as long as the whole cells pass: on one connection they left a core idle once the cells were done).
    ``every_model``: ``model_ids`` are all the models, so the cells pass need not test each trade's
    (the cells of a model created since are read, then left out)."""
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(rt.pool.connection())
        await stack.enter_async_context(first.transaction())
        await repo.begin_snapshot_read(first)
        others = []
        for _ in range(min(_MEDIAN_CONNECTIONS, rt.pool.max_size - 1, len(model_ids))):
            conn = await stack.enter_async_context(rt.pool.connection())
            await stack.enter_async_context(conn.transaction())
            await repo.begin_snapshot_read(conn)
            others.append(conn)
        if others:
            snapshot = await repo.export_snapshot(first)
            for conn in others:
                await repo.use_snapshot(conn, snapshot)
            cells, *parts = await asyncio.gather(
                repo.list_trade_cells(first, None if every_model else model_ids),
                *(repo.list_trade_order_stats(conn, model_ids[i :: len(others)]) for i, conn in enumerate(others)))
            merged = {m: v for part in parts for m, v in part.items()}
            ordered = {m: merged[m] for m in model_ids if m in merged}
        else:
            cells = await repo.list_trade_cells(first, None if every_model else model_ids)
            ordered = await repo.list_trade_order_stats(first, model_ids)
    return {
        m: stats_of_cells(cells[m], median_holding=holding, median_notional=notional,
                          last_exit_time_s=exit_ms / 1000, last_trade_id=last_id)
        for m, (holding, notional, exit_ms, last_id) in ordered.items() if m in cells
    }


async def _analyse_batch(
    rt: Runtime, batch: list[str], stats: dict[str, TradeStats], now_ms: int, report: AnalyticsReport
) -> dict[str, dict[str, Any]]:
    t = time.perf_counter()
    async with rt.pool.connection() as conn, conn.transaction():
        await repo.begin_snapshot_read(conn)
        cycles = await repo.list_decision_cycles(conn, batch)
        positions = await repo.list_position_spans(conn, batch)
        messages = await repo.list_last_messages(conn, batch)
    facts = group_facts(batch, {m: stats[m] for m in batch if m in stats}, cycles, positions, messages)
    report.read_s += time.perf_counter() - t
    _note_invalid_decisions(facts.values(), report)

    t = time.perf_counter()
    payloads, failed = await asyncio.to_thread(compute_payloads, facts.values(), now_ms / 1000)
    report.compute_s += time.perf_counter() - t
    report.failed.update(failed)
    for model_id, error in failed.items():
        log.error("analytics_model_failed", model_id=model_id, error=error)
    if not payloads:
        return payloads

    t = time.perf_counter()
    ids = list(payloads)
    async with rt.pool.connection() as conn, conn.transaction():
        await repo.upsert_model_analytics(
            conn, ids, [cache.encode(payloads[m]).decode() for m in ids],
            datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc), now_ms,
        )
    report.write_s += time.perf_counter() - t
    report.computed.extend(ids)
    return payloads


def compute_payloads(
    facts: Iterable[ModelFacts], now_s: float
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """ModelAnalytics per model; a model whose facts are rejected is reported, the others go on."""
    payloads: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for f in facts:
        try:
            payloads[f.model_id] = model_analytics(f, now_s)
        except ValueError as exc:
            failed[f.model_id] = str(exc)
    return payloads, failed


def _note_invalid_decisions(facts: Iterable[ModelFacts], report: AnalyticsReport) -> None:
    for f in facts:
        report.decisions += len(f.decisions)
        for problem in f.invalid_decisions:
            if report.invalid_decisions < _LOGGED_PROBLEMS:
                log.warning("invalid_decision_skipped", problem=problem)
            report.invalid_decisions += 1


async def _publish(rt: Runtime, payloads: dict[str, dict[str, Any]], report: AnalyticsReport) -> None:
    """``nof0:analytics:{id}`` of the models computed here; ``nof0:analytics:all`` of every stored row
    (models computed by another worker included), each model in this run's key order."""
    t = time.perf_counter()
    async with rt.pool.connection() as conn, conn.transaction():
        rows = await repo.list_model_analytics(conn)
    everyone = [payloads.get(r["model_id"], r["payload"]) for r in rows]
    try:
        await cache.publish_analytics(rt.redis, rt.keys, payloads, {"analytics": everyone})
        report.published = True
    except RedisError as exc:
        report.redis_error = note_redis_failure(rt, "analytics", exc)
    report.publish_s = time.perf_counter() - t

