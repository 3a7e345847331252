"""API test fixtures: an ASGI client on ``create_app(rt)``, and a runtime copy with a dead Redis."""

from __future__ import annotations

import dataclasses
import shutil
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest_asyncio
import yaml

from nof0.api.app import create_app
from nof0.api.listener import ChangeListener
from nof0.kernel.clock import FixedClock
from nof0.runtime import Runtime, open_redis
from tests.conftest import ETC

NOW_MS = 1_761_452_400_000  # 2025-10-26, just after the capture


def config_with_prefix(tmp_path: Path, prefix: str) -> Path:
    """A copy of etc/ whose Redis prefix is the test's, for commands run through ``nof0.cli.main``."""
    etc = tmp_path / "etc"
    shutil.copytree(ETC.parent, etc)
    manifest = yaml.safe_load((etc / "nof0.yaml").read_text())
    manifest["redis"]["prefix"] = prefix
    (etc / "nof0.yaml").write_text(yaml.safe_dump(manifest))
    return etc / "nof0.yaml"


def client_for(rt: Runtime) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(rt)), base_url="http://nof0.test")


@asynccontextmanager
async def listening_client(rt: Runtime) -> AsyncIterator[tuple[httpx.AsyncClient, ChangeListener]]:
    """A client on an app whose lifespan runs, as under ``serve_api``: its change listener drops the
    responses writers announce changes to (``await listener.caught_up()`` after a write)."""
    app = create_app(rt)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nof0.test") as client:
            yield client, app.state.api.listener


@pytest_asyncio.fixture
async def clock_rt(rt) -> Runtime:
    """The test runtime with a controlled clock (serverTime, TTL ages and Redis retry windows)."""
    return dataclasses.replace(rt, clock=FixedClock(NOW_MS))


@pytest_asyncio.fixture
async def client(clock_rt):
    async with client_for(clock_rt) as c:
        yield c


@pytest_asyncio.fixture
async def dead_redis_rt(clock_rt):
    """The same runtime, but its Redis client points at a port where nothing listens."""
    dead = open_redis("redis://127.0.0.1:1/0", clock_rt.config)
    try:
        yield dataclasses.replace(clock_rt, redis=dead)
    finally:
        await dead.aclose()
