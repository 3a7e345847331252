"""The scheduled jobs of design 2.3 and 2.5, as functions of the runtime:

* ``refresh_views``: ``refresh_views_nof0()``, then the leaderboard and since-inception caches;
* ``analytics``: the analytics batch (which refreshes the views itself, after its upsert), then the
  same two caches. It therefore covers ``refresh_views`` and the scheduler does not run both at once.
* ``retention``: archive and drop old months of ``price_ticks`` (and ``account_equity_snapshots`` when
  configured), archive and delete old ``decision_cycles`` (``retention.py``);
* ``partitions``: create the coming months' partitions and empty the default ones (``partitions.py``).

Each returns a JSON-able summary; ``analytics`` raises :class:`AnalyticsFailed` when a model's
analytics could not be computed (after persisting and publishing every other model), so the run is
recorded as failed with the reason.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable

import msgspec

from nof0.analytics.job import run_analytics
from nof0.analytics.publish import rebuild_leaderboard, rebuild_since_inception
from nof0.cache.changes import Change, announce
from nof0.jobs.partitions import PARTITIONS, partitions_job
from nof0.jobs.retention import RETENTION, retention_job
from nof0.jobs.views import refresh_views
from nof0.runtime import Runtime

__all__ = ["REFRESH_VIEWS", "ANALYTICS", "RETENTION", "PARTITIONS", "JOBS", "AnalyticsFailed", "refresh_views_job", "analytics_job",
           "analytics_for"]

REFRESH_VIEWS = "refresh_views"
ANALYTICS = "analytics"


class AnalyticsFailed(RuntimeError):
    """Some models' analytics failed; ``summary`` is the run's summary (the others were published)."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


# What each job republishes is announced after it (``cache.changes``), so every API process drops the
# responses built from it and dashboards see the new numbers at once instead of after the responses'
# TTL (encode once per data change, not per TTL).
_REPUBLISHED = (Change("views"), Change("leaderboard"), Change("since_inception"))


async def _publish_caches(rt: Runtime, *also: Change) -> dict[str, Any]:
    summary = {
        "leaderboard": msgspec.to_builtins(await rebuild_leaderboard(rt)),
        "since_inception": msgspec.to_builtins(await rebuild_since_inception(rt)),
    }
    await announce(rt, (*_REPUBLISHED, *also))  # best effort: logs and counts a Redis error
    return summary


async def refresh_views_job(rt: Runtime) -> dict[str, Any]:
    seconds = await refresh_views(rt)
    return {"refresh_views_s": seconds} | await _publish_caches(rt)


async def analytics_job(rt: Runtime, model_ids: Iterable[str] | None = None) -> dict[str, Any]:
    report = await run_analytics(rt, model_ids)
    computed = Change("analytics", models=tuple(sorted(report.computed)))
    summary = {"analytics": msgspec.to_builtins(report)} | await _publish_caches(rt, computed)
    if report.failed:
        reasons = "; ".join(f"{m}: {e}" for m, e in sorted(report.failed.items()))
        raise AnalyticsFailed(f"{len(report.failed)} model(s) failed: {reasons}", summary)
    return summary


def analytics_for(model_ids: Iterable[str]) -> Callable[[Runtime], Awaitable[dict[str, Any]]]:
    """The analytics job restricted to some models (``nof0 analytics --model``)."""
    ids = list(model_ids)
    return lambda rt: analytics_job(rt, ids)


JOBS = {REFRESH_VIEWS: refresh_views_job, ANALYTICS: analytics_job, RETENTION: retention_job,
        PARTITIONS: partitions_job}
