"""Every API process hears every writer: a background reader of the changes stream (``cache.changes``)
drops the cached responses built from what changed from Redis and marks this process's held bytes of
them stale; those are served only inside their near-cache window while they are rebuilt at once
(``read_path``: stale while revalidate), and stream clients hear of the change once that is done.

Writers (the ingestion service per committed batch, the jobs after republishing) announce what they
changed; they never call into the API. The listener starts from the newest entry when the app starts
(its lifespan; ``serve_api`` runs it), reads on with ``XREAD BLOCK``, and per read drops the union of
the responses the read's changes affect (:data:`KIND_ENDPOINTS`): one ``DEL`` per read, however many
batches a busy feed committed meanwhile. Dropping is idempotent, so every API process doing it for
the same change costs nothing but a second ``DEL``.

A Redis error is logged (once per outage) and counted; the listener retries after a pause and resumes
from the last entry it applied, so nothing announced while Redis answered the writers is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator, Callable, Iterable

from redis.exceptions import RedisError

from nof0.api.invalidate import invalidate_api_payloads
from nof0.api.read_path import ReadPath
from nof0.cache.changes import Change, latest_change_id, read_changes
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["ChangeListener", "KIND_ENDPOINTS", "endpoints_of"]

log = get_logger("nof0.api.listener")

# The API responses built from each kind of change. Event types (docs/events.md) whose facts the
# endpoints read directly, then the jobs' outputs. Kinds not listed (symbols, market metadata,
# simulator state) feed no endpoint.
KIND_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "model": ("positions", "account-totals", "since-inception-values", "traders"),
    "price_tick": ("crypto-prices", "positions", "account-totals"),
    "fill": ("trades", "positions", "account-totals"),
    "trade": ("trades", "account-totals"),
    "position": ("positions", "account-totals"),
    "position_close": ("trades", "positions", "account-totals"),
    "equity_snapshot": ("account-totals",),
    "conversation_message": ("conversations",),
    "decision_cycle": ("traders",),
    "trader_state": ("traders",),
    "views": ("leaderboard", "since-inception-values"),
    "leaderboard": ("leaderboard",),
    "since_inception": ("since-inception-values",),
    "analytics": ("analytics",),
}

_COUNT = 500  # entries per read: one drop per read covers them all
_RETRY_S = 1.0  # pause after a Redis error


def endpoints_of(changes: Iterable[Change]) -> set[str]:
    """The endpoints whose cached responses ``changes`` make stale."""
    return {e for c in changes for e in KIND_ENDPOINTS.get(c.kind, ())}


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class ChangeListener:
    """``async with ChangeListener(rt, read_path).running():`` listens for the block's duration."""

    def __init__(self, rt: Runtime, read_path: ReadPath) -> None:
        self.rt = rt
        self.read_path = read_path
        # below the Redis client's socket timeout, so a quiet stream never looks like a dead server;
        # short, since stopping waits for the read in progress
        self.block_ms = max(1, min(500, int(rt.config.root.redis.socket_timeout * 500)))
        self.last_id: str | None = None  # the newest entry applied (None until the start is known)
        self._read_id: str | None = None  # the newest entry read (its rebuilds may still be running)
        self._delivered: asyncio.Task[None] | None = None  # the newest read's rebuilds, then its delivery
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._closed = False
        self._failing = False
        # called with each read's entries once their responses are dropped (the SSE hub, stream.py)
        self.subscribers: list[Callable[[list[tuple[str, Change]]], None]] = []

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["ChangeListener"]:
        self._closed = False
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="nof0-api-change-listener")
        try:
            yield self
        finally:
            # Asked to stop, not cancelled: the blocking read ends within block_ms and the connection
            # goes back to the pool clean (a read cancelled halfway can leave it waiting for its reply).
            self._stop.set()
            task, self._task = self._task, None
            try:
                await asyncio.wait_for(asyncio.shield(task), self.block_ms / 1000 + 5)
            except asyncio.TimeoutError:  # pragma: no cover - a read stuck past the socket timeout
                task.cancel()
            if self._delivered is not None:
                self._delivered.cancel()  # the server is stopping: nobody is left to tell
                with contextlib.suppress(asyncio.CancelledError):
                    await self._delivered

    async def caught_up(self) -> None:
        """Wait until every change announced before this call has been applied (for tests and probes)."""
        target = _id_key(await latest_change_id(self.rt.redis, self.rt.keys))
        async with self._progress:
            await self._progress.wait_for(lambda: self._stopped() or (
                self.last_id is not None and _id_key(self.last_id) >= target))
        if self.last_id is None or _id_key(self.last_id) < target:
            raise RuntimeError("the change listener is not running")

    def _stopped(self) -> bool:
        return self._closed or self._task is None or self._task.done()

    async def apply(self, entries: list[tuple[str, Change]]) -> None:
        """Drop what ``entries`` changed from Redis, then mark the bytes held here stale (the other order
        would let a request re-confirm the stale Redis value in between); they are served only while their
        near-cache window lasts, rebuilt at once behind (``read_path``: stale while revalidate). The
        subscribers (stream clients) hear of the entries once those rebuilds are done, in order, so a
        client refetching on an event gets the new facts; the next read does not wait for them."""
        stale = sorted(endpoints_of(c for _, c in entries))
        if stale:
            await invalidate_api_payloads(self.rt, stale)  # best effort: logs and counts a Redis error
            self.read_path.mark_stale(stale)
        self._read_id = entries[-1][0]
        self._delivered = asyncio.create_task(self._deliver(self._delivered, stale, entries),
                                              name="nof0-api-change-delivery")

    async def _deliver(self, previous: asyncio.Task[None] | None, stale: list[str],
                       entries: list[tuple[str, Change]]) -> None:
        await self.read_path.rebuilt(stale)
        if previous is not None:
            await asyncio.wait([previous])  # in order; a failure of its own was logged by it
        for deliver in self.subscribers:
            try:
                deliver(entries)
            except Exception as exc:  # noqa: BLE001 - one subscriber must not stop the others or the order
                log.warning("change subscriber failed", subscriber=repr(deliver), error=repr(exc))
        await self._advance(entries[-1][0])

    async def _advance(self, entry_id: str) -> None:
        async with self._progress:
            self.last_id = entry_id
            self._progress.notify_all()

    async def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    if self._read_id is None:
                        self._read_id = await latest_change_id(self.rt.redis, self.rt.keys)
                        await self._advance(self._read_id)
                    entries = await read_changes(self.rt.redis, self.rt.keys, self._read_id,
                                                 block_ms=self.block_ms, count=_COUNT)
                except (RedisError, OSError) as exc:
                    self._failed(exc)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), _RETRY_S)
                    continue
                if self._failing:
                    self._failing = False
                    log.info("change listener reading again", last_id=self.last_id)
                if entries:
                    await self.apply(entries)
        finally:
            self._closed = True
            async with self._progress:  # wake waiters of caught_up: nothing more will be applied
                self._progress.notify_all()

    def _failed(self, exc: Exception) -> None:
        self.rt.metrics.cache_requests.labels("changes", "error").inc()
        if not self._failing:
            log.warning("change listener cannot read the changes stream; retrying", error=str(exc),
                        retry_in_s=_RETRY_S)
        self._failing = True
