"""A background worker of ``nof0 run`` that runs one pass every interval until stopped (the cache
watcher, the positions re-marking): ``async with worker.running():`` for the block's lifetime.

A pass that raises is logged and the next one runs on schedule; ``stop`` wakes the wait at once. A
worker may ask for one last pass on stop (``final_pass``)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

from nof0.obs.logging import get_logger

__all__ = ["Periodic"]

log = get_logger("nof0.jobs.periodic")


class Periodic:
    name = "periodic"
    final_pass = False

    def __init__(self, every_s: float) -> None:
        self.every_s = float(every_s)

    async def run_once(self) -> object:  # pragma: no cover - each worker defines its pass
        raise NotImplementedError

    def next_wait_s(self) -> float:
        """Seconds until the next pass (a worker may back off after failures)."""
        return self.every_s

    async def _pass(self) -> None:
        try:
            await self.run_once()
        except Exception as exc:  # noqa: BLE001 - the next pass retries; the service goes on
            self.on_failure(exc)
            log.warning("worker_pass_failed", worker=self.name, error=f"{type(exc).__name__}: {exc}")

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
