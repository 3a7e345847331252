"""The background workers' loop (``jobs.periodic``): a run of failing passes is one warning, not one per
pass, and the first pass that works again says so."""

from __future__ import annotations

import asyncio

import structlog
from structlog.testing import capture_logs

from nof0.jobs.periodic import Periodic


class _Flaky(Periodic):
    name = "flaky"

    def __init__(self, outcomes: list[bool], stop: asyncio.Event) -> None:
        super().__init__(0)
        self.outcomes, self.stop, self.failures = outcomes, stop, []

    async def run_once(self) -> None:
        ok = self.outcomes.pop(0)
        if not self.outcomes:
            self.stop.set()
        if not ok:
            raise ConnectionError("redis away")

    def on_failure(self, exc: Exception) -> None:
        self.failures.append(exc)


async def test_an_outage_is_one_warning_and_the_recovery_one_line():
    stop = asyncio.Event()
    worker = _Flaky([True, False, False, False, True, False], stop)
    saved = structlog.get_config()
    structlog.reset_defaults()  # every level reaches the capture, whatever an earlier test configured
    try:
        with capture_logs() as logs:
            await worker.run(stop)
    finally:
        structlog.configure(**saved)
    seen = [(e["event"], e["log_level"]) for e in logs if e.get("worker") == "flaky"]
    assert seen == [("worker_pass_failed", "warning"), ("worker_pass_failed", "debug"),
                    ("worker_pass_failed", "debug"), ("worker_recovered", "info"),
                    ("worker_pass_failed", "warning")]
    assert len(worker.failures) == 4 and worker.failing
