"""The API over real HTTP: ``serve_api`` inside ``run_service`` (``nof0 run``), stop event, bind errors."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from nof0.api.server import ApiStartError, serve_api
from nof0.config import ConfigError
from nof0.engine.runner import Engine
from nof0.service import run_service


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_run_service_serves_the_api_until_stopped(rt, capsys):
    port = _free_port()
    stop, listening = asyncio.Event(), asyncio.Event()
    service = asyncio.create_task(run_service(rt, stop, host="127.0.0.1", port=port, api_started=listening,
                                              engine=Engine(rt, markets=[])))  # no feed: no network
    await asyncio.wait_for(listening.wait(), 10)
    out = ""
    for _ in range(200):  # the banner task wakes on the same event
        out += capsys.readouterr().out
        if "nof0 ready" in out:
            break
        await asyncio.sleep(0.01)
    ready = [line for line in out.splitlines() if line.startswith("nof0 ready")]
    assert len(ready) == 1 and f"; data in {rt.config.data_dir};" in ready[0]  # servers external or not
    assert f"API on http://127.0.0.1:{port}/api" in ready[0]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        r = await c.get("/api/crypto-prices")
        assert r.status_code == 200 and r.json()["prices"] == {}
        assert (await c.get("/readyz")).status_code == 200
    stop.set()
    assert await asyncio.wait_for(service, 10) == 0
    assert "nof0 ready" not in capsys.readouterr().out  # printed once, above


async def test_serve_api_reports_a_port_in_use(rt, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stop = asyncio.Event()
        with pytest.raises(ApiStartError, match=str(port)):
            await asyncio.wait_for(serve_api(rt, stop, host="127.0.0.1", port=port), 10)
        assert await run_service(rt, stop, host="127.0.0.1", port=port, engine=Engine(rt, markets=[])) == 1
    out = capsys.readouterr().out
    assert "nof0 ready" not in out and str(port) in out  # no "API on ..." banner for an API that never listened


async def test_a_file_source_without_a_folder_is_a_configuration_error(rt):
    rt.config.root.api.data_sources = {"trades": "file"}
    with pytest.raises(ConfigError, match="api.file_dir"):
        await run_service(rt, asyncio.Event(), host="127.0.0.1", port=_free_port())
