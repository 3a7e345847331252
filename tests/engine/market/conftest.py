from __future__ import annotations

import pytest_asyncio

from tests.fakes.hyperliquid_market import FakeHyperliquid


@pytest_asyncio.fixture
async def fake():
    async with FakeHyperliquid() as server:
        yield server
