"""Wait for the first of several awaitables (a stop event, a wake-up, a sleep, a client going away) and
leave none of the others running: the pattern every loop of the service needs, in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

__all__ = ["wait_first"]


async def wait_first(*awaitables: Awaitable[object]) -> tuple[asyncio.Future, ...]:
    """Runs ``awaitables`` until one completes, then cancels and awaits the rest (also when the caller is
    cancelled). Returns their futures in the given order: ``done()`` and not ``cancelled()`` tells which
    finished; their exceptions are retrieved, never raised here."""
    futures = tuple(asyncio.ensure_future(a) for a in awaitables)
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for f in futures:
            f.cancel()
        await asyncio.gather(*futures, return_exceptions=True)
    return futures
