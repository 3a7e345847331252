"""``kernel.waiting.wait_first``: the first awaitable to finish ends the wait, the others are cancelled
and awaited, and a failing one's error is kept on its future, not raised."""

from __future__ import annotations

import asyncio

from nof0.kernel.waiting import wait_first


async def test_the_first_to_finish_wins_and_the_rest_are_cancelled():
    stop, never = asyncio.Event(), asyncio.Event()
    stop.set()
    first, other = await wait_first(stop.wait(), never.wait())
    assert first.done() and not first.cancelled() and other.cancelled()


async def test_a_failing_awaitable_ends_the_wait_with_its_error_kept():
    async def fail():
        raise ConnectionError("client gone")

    never = asyncio.Event()
    failed, other = await wait_first(fail(), never.wait())
    assert isinstance(failed.exception(), ConnectionError) and other.cancelled()
