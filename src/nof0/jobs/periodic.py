"""A background worker of ``nof0 run`` that runs one pass every interval until stopped (the cache
watcher, the positions re-marking): ``async with worker.running():`` for the block's lifetime.

A pass that raises is logged (the first of a run of failures as a warning, the ones after it at debug,
so an outage is one line, not one a second) and the next one runs on schedule; the first pass that works
again logs ``worker_recovered``. ``stop`` wakes the wait at once. A worker may ask for one last pass on
stop (``final_pass``)."""

from __future__ import annotations

import abc
import asyncio
import contextlib
from typing import AsyncIterator

from nof0.obs.logging import get_logger

__all__ = ["Periodic"]

log = get_logger("nof0.jobs.periodic")


class Periodic(abc.ABC):
    name = "periodic"
    final_pass = False

    def __init__(self, every_s: float) -> None:
        self.every_s = float(every_s)
        self.failing = False  # the last pass raised

    @abc.abstractmethod
    async def run_once(self) -> object:
        """One pass of the worker."""

    def next_wait_s(self) -> float:
        """Seconds until the next pass (a worker may back off after failures)."""
        return self.every_s

    async def _pass(self) -> None:
        try:
            await self.run_once()
        except Exception as exc:  # noqa: BLE001 - the next pass retries; the service goes on
            self.on_failure(exc)
            (log.debug if self.failing else log.warning)(
                "worker_pass_failed", worker=self.name, error=f"{type(exc).__name__}: {exc}")
            self.failing = True
            return
        if self.failing:
            log.info("worker_recovered", worker=self.name)
        self.failing = False

    def on_failure(self, exc: Exception) -> None:
        """Called with a pass's error before it is logged."""

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._pass()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.next_wait_s())
        if self.final_pass:
            await self._pass()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["Periodic"]:
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop), name=f"nof0-{self.name}")
        try:
            yield self
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
