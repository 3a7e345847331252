"""The in-service scheduler of design 2.3 and 2.5: view refresh and the analytics batch, on a timer and
after ingest batches, and retention on its timer; one job at a time.

* **Timer.** ``refresh_views`` runs every ``jobs.refresh_views_every``, ``analytics`` every
  ``jobs.analytics_every``, counted from the end of the previous run. ``analytics`` runs at start-up
  (design 3.4 cold start: hydrate leaderboard and analytics, then write the caches). Since the
  analytics job refreshes the views itself, a run of it also counts as a view refresh. ``retention``
  runs every ``jobs.retention_every`` (first one cadence after start, so a restart never adds a
  retention pass to the cold start); it is left out when ``jobs.retention.enabled`` is false.
  ``partitions`` runs at start-up and every ``jobs.partitions_every``.
* **After ingest.** The ingestion service calls :meth:`Scheduler.on_committed` with the event types of
  each committed batch (when ``jobs.refresh_after_ingest``). Requests are coalesced: the first one
  schedules a run ``debounce_s`` later and the ones that follow join it, so a burst of batches gives
  one run; a request that arrives while the job runs gives exactly one more run after it.
* **Never two at once.** One asyncio lock serialises every run in the process (the loop's and
  :meth:`run_now`'s); across processes ``refresh_views_nof0()`` takes an advisory lock and the
  analytics job a Redis lock per model.
* **Survives failures.** A failing run is logged, recorded in ``job_runs`` and the metrics, and the
  next run happens on schedule.

Time comes from ``rt.clock`` and waiting from an injectable ``sleep``, so tests drive the timer
without waiting for real.
"""

from __future__ import annotations

import asyncio
import math
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable, Iterable, Mapping

from nof0.jobs.runner import JobFn, JobOutcome, run_recorded
from nof0.jobs.tasks import ANALYTICS, JOBS, PARTITIONS, REFRESH_VIEWS, RETENTION
from nof0.kernel.waiting import wait_first
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["Scheduler", "VIEW_EVENTS", "ANALYTICS_EVENTS"]

log = get_logger("nof0.jobs.scheduler")

# Event types (docs/events.md) whose facts feed the views (v_leaderboard, v_since_inception) and the
# analytics. Prices, market metadata, trader and simulator state feed neither: a tick feed must not
# keep the jobs busy.
VIEW_EVENTS = frozenset({"model", "trade", "fill", "equity_snapshot", "decision_cycle"})
ANALYTICS_EVENTS = VIEW_EVENTS | {"position", "position_close", "conversation_message"}

Sleep = Callable[[float], Awaitable[None]]


class Scheduler:
    def __init__(
        self,
        rt: Runtime,
        *,
        jobs: Mapping[str, JobFn] | None = None,
        every_s: Mapping[str, float] | None = None,
        sleep: Sleep = asyncio.sleep,
        debounce_s: float = 1.0,
    ) -> None:
        settings = rt.config.root.jobs
        self.rt = rt
        self.jobs = dict(jobs or JOBS)
        if jobs is None and not settings.retention.enabled:
            self.jobs.pop(RETENTION)
        self.every_s = {REFRESH_VIEWS: float(settings.refresh_views_every), ANALYTICS: float(settings.analytics_every),
                        RETENTION: float(settings.retention_every), PARTITIONS: float(settings.partitions_every)}
        self.every_s.update(every_s or {})
        self.after_ingest = settings.refresh_after_ingest
        self.debounce_ms = int(debounce_s * 1000)
        self._sleep = sleep
        self._running = asyncio.Lock()
        self._wake = asyncio.Event()
        now = rt.clock.now_ms()
        # Next timer run of each job; analytics (which covers the views) at once, for the cold start.
        self._timer_due = {name: now + self._every_ms(name) for name in self.jobs}
        # partitions at once too: the months ahead exist before the first insert of a new month
        for first in (PARTITIONS, ANALYTICS):
            if first in self._timer_due:
                self._timer_due[first] = now
        self._requested: dict[str, int] = {}  # job -> when the coalesced request runs

    # ---------------------------------------------------------------------------- requests

    def request_refresh(self, event_types: Iterable[str] | None = None) -> None:
        """Ask for a view refresh (and an analytics run when analytics facts changed) soon.

        ``event_types`` are the types of a committed ingest batch; None means "anything may have
        changed". Cheap and synchronous: callable from any ingest callback.
        """
        if not self.after_ingest:
            return
        types = None if event_types is None else set(event_types)
        wanted = [
            name for name, relevant in ((REFRESH_VIEWS, VIEW_EVENTS), (ANALYTICS, ANALYTICS_EVENTS))
            if name in self.jobs and (types is None or types & relevant)
        ]
        due = self.rt.clock.now_ms() + self.debounce_ms
        for name in wanted:
            if name in self._requested:
                self.rt.metrics.job_requests.labels(name, "coalesced").inc()
            else:
                self._requested[name] = due
                self.rt.metrics.job_requests.labels(name, "queued").inc()
        if wanted:
            self._wake.set()

    async def on_committed(self, event_types: set[str]) -> None:
        """The ingestion service's ``on_committed`` callback."""
        self.request_refresh(event_types)

    # ---------------------------------------------------------------------------- running

    async def run_now(self, name: str) -> JobOutcome:
        """Run one job now, after any run in progress (never two at once in this process)."""
        async with self._running:
            covered = [name] + ([REFRESH_VIEWS] if name == ANALYTICS and REFRESH_VIEWS in self.jobs else [])
            for job in covered:
                # Requests made so far are served by this run; those made while it runs stay pending
                # and give one more run after it (their facts may have committed after our reads).
                self._requested.pop(job, None)
            outcome = await run_recorded(self.rt, name, self.jobs[name])
            finished = self.rt.clock.now_ms()
            for job in covered:
                self._timer_due[job] = finished + self._every_ms(job)
            return outcome

    def due(self) -> dict[str, int]:
        """When each job runs next (ms): its timer or an earlier pending request."""
        return {name: min(t, self._requested.get(name, t)) for name, t in self._timer_due.items()}

    async def run_due(self) -> list[JobOutcome]:
        """Run the jobs that are due now; partitions first, then analytics, since it also refreshes the views."""
        now = self.rt.clock.now_ms()
        outcomes = []
        for name in sorted(self.jobs, key=lambda n: (n != PARTITIONS, n != ANALYTICS)):
            if self.due()[name] <= now:
                outcomes.append(await self.run_now(name))
        return outcomes

    async def run(self, stop: asyncio.Event) -> None:
        """Run jobs as they fall due until ``stop`` is set."""
        log.info("scheduler_started", every_s=self.every_s, after_ingest=self.after_ingest)
        while not stop.is_set():
            await self.run_due()
            wait_ms = min(self.due().values(), default=math.inf) - self.rt.clock.now_ms()
            await self._wait(max(0.0, wait_ms / 1000), stop)
        log.info("scheduler_stopped")

    @asynccontextmanager
    async def running(self) -> AsyncIterator["Scheduler"]:
        """``async with Scheduler(rt).running():`` runs the loop in the background for the block."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop), name="nof0-scheduler")
        try:
            yield self
        finally:
            stop.set()  # an idle loop returns at once
            if self._running.locked():
                task.cancel()  # a run in progress is recorded as cancelled; its locks are released
            await asyncio.gather(task, return_exceptions=True)

    async def _wait(self, seconds: float, stop: asyncio.Event) -> None:
        """Until the next due time, a new request or ``stop``, whichever comes first."""
        self._wake.clear()
        sleep = [] if stop.is_set() or math.isinf(seconds) else [self._sleep(seconds)]
        await wait_first(*sleep, stop.wait(), self._wake.wait())

    def _every_ms(self, name: str) -> int:
        return int(self.every_s.get(name, 300.0) * 1000)
