"""``nof0 run --role``: an API process serves the API and runs no engine; an engine process runs the engine
and the jobs and listens on no port."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
import pytest

from nof0.engine.runner import Engine
from nof0.service import run_service


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _SpyEngine(Engine):
    def __init__(self, rt) -> None:
        super().__init__(rt, markets=[])  # no feed: no network
        self.started = asyncio.Event()

    @contextlib.asynccontextmanager
    async def running(self):
        self.started.set()
        yield self


async def test_the_api_role_serves_the_api_and_runs_no_engine(rt, capsys):
    port, stop, listening = _free_port(), asyncio.Event(), asyncio.Event()
    engine = _SpyEngine(rt)
    service = asyncio.create_task(run_service(rt, stop, host="127.0.0.1", port=port, api_started=listening,
                                              engine=engine, role="api"))
    await asyncio.wait_for(listening.wait(), 30)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        assert (await c.get("/api/crypto-prices")).status_code == 200
    stop.set()
    assert await asyncio.wait_for(service, 30) == 0
    assert not engine.started.is_set()
    assert "nof0 ready (api)" in capsys.readouterr().out


async def test_the_engine_role_runs_the_engine_and_listens_nowhere(rt, capsys):
    port, stop = _free_port(), asyncio.Event()
    engine = _SpyEngine(rt)
    service = asyncio.create_task(run_service(rt, stop, host="127.0.0.1", port=port, engine=engine, role="engine"))
    await asyncio.wait_for(engine.started.wait(), 30)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens on the API port
    stop.set()
    assert await asyncio.wait_for(service, 30) == 0
    out = capsys.readouterr().out
    assert "nof0 ready (engine)" in out and "no API" in out


async def test_an_unknown_role_is_refused(rt):
    with pytest.raises(ValueError, match="role must be one of"):
        await run_service(rt, asyncio.Event(), role="both")


async def test_the_all_role_refuses_to_run_beside_live_engine_processes(rt):
    # an engine process heartbeats into nof0:engines; one whose heartbeat expired is not counted
    from nof0.engine.runner import wall_ms
    from nof0.commands_runtime import UsageError
    engines = rt.keys.engines().name
    await rt.redis.zadd(engines, {"host-a:41:dead": wall_ms() - 1000})
    assert rt.config.manager.traders  # the shipped arena's traders
    stop, engine = asyncio.Event(), _SpyEngine(rt)
    service = asyncio.create_task(run_service(rt, stop, host="127.0.0.1", port=_free_port(), engine=engine))
    await asyncio.wait_for(engine.started.wait(), 30)
    stop.set()
    assert await asyncio.wait_for(service, 30) == 0
    await rt.redis.zadd(engines, {"host-b:42:live": wall_ms() + 60_000})
    engine = _SpyEngine(rt)
    with pytest.raises(UsageError, match=r"1 engine process\(es\) already run .*host-b:42:live.*--role api"):
        await run_service(rt, asyncio.Event(), host="127.0.0.1", port=_free_port(), engine=engine)
    assert not engine.started.is_set()
