"""What a one-off process (``nof0 ingest``, ``nof0 import``) runs after a load, since it has no scheduler
to tell (design 2.3 "after ETL batches", 2.4 "Analytics"): the same jobs the service's scheduler runs
after ingest batches (``nof0.jobs.scheduler``), for what the load changed.

* facts of the views changed (``VIEW_EVENTS``): ``refresh_views_job`` (the views, the leaderboard
  sorted set and cache, the since-inception lists);
* facts of some models' analytics changed (``ANALYTICS_EVENTS``): ``analytics_job`` for those models,
  which refreshes the views and rebuilds the same caches itself, so it replaces the first.

A running API learns of the load itself from the changes the ingestion service announced per batch
(``cache.changes``), and of the jobs' output from theirs; nothing here calls into the API.

Nothing runs when ``jobs.refresh_after_ingest`` is off or nothing changed. The load is committed
before: a failing job is reported as one line naming the job and the error (never a traceback) and
makes the command's exit status non-zero; the data stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nof0.kernel.report import IngestReport
from nof0.jobs.scheduler import ANALYTICS_EVENTS, VIEW_EVENTS
from nof0.jobs.tasks import ANALYTICS, REFRESH_VIEWS, analytics_job, refresh_views_job
from nof0.runtime import Runtime

__all__ = ["FollowUp", "refresh_after_ingest"]

@dataclass
class FollowUp:
    ran: list[str] = field(default_factory=list)  # the jobs run, in order
    models: list[str] = field(default_factory=list)  # the models whose analytics were recomputed
    failed: str | None = None  # "job: error" of the job that failed

    @property
    def ok(self) -> bool:
        return self.failed is None


async def refresh_after_ingest(rt: Runtime, report: IngestReport) -> FollowUp:
    """Run the jobs ``report``'s changes call for; never raises for a failing job (see the module doc)."""
    done = FollowUp()
    if not rt.config.root.jobs.refresh_after_ingest:
        return done
    models = sorted(report.models_changed_by(ANALYTICS_EVENTS))
    if models:
        job, run = ANALYTICS, (lambda: analytics_job(rt, models))
        done.models = models
    elif report.changed_types & VIEW_EVENTS:
        job, run = REFRESH_VIEWS, (lambda: refresh_views_job(rt))
    else:
        return done
    done.ran.append(job)
    try:
        await run()
    except Exception as exc:  # noqa: BLE001 - the load is committed; the operator gets one clear line
        done.failed = f"{job}: {type(exc).__name__}: {exc}".splitlines()[0]
        rt.metrics.job_failures.labels(job).inc()
    return done
