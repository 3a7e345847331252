"""Group calls: concurrent requests of many traders' cycles served by one call over all of them.

The manager runs every trader due at a tick at once; each cycle reads its trades and positions and
writes its journal. One round trip (one transaction) per trader would make a tick of 500 cycles cost
500 of each; a :class:`GroupCall` hands the requests made while its previous call runs (or in the same
turn of the event loop) to one call of its function, as the sim exchange does with its commits. A lone
cycle waits for nothing: its request goes out at the next turn of the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCall"]

R = TypeVar("R")
V = TypeVar("V")


class GroupCall(Generic[R, V]):
    """``await group(request)``: ``fn(requests)`` returns one result per request, in their order; when it
    raises, every request of that call raises the same error."""

    def __init__(self, fn: Callable[[list[R]], Awaitable[Sequence[V]]]) -> None:
        self._fn = fn
        self._queue: list[tuple[R, asyncio.Future[V]]] = []
        self._flusher: asyncio.Future[None] | None = None

    async def __call__(self, request: R) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            pending, self._queue = self._queue, []
            try:
                results = await self._fn([r for r, _ in pending])
                if len(results) != len(pending):
                    raise RuntimeError(f"{self._fn.__qualname__} answered {len(results)} of {len(pending)} requests")
            except BaseException as exc:  # noqa: BLE001 - every waiter learns; none is left hanging
                for _, future in pending:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), result in zip(pending, results):
                if not future.done():
                    future.set_result(result)
