"""The API's HTTP protocol (``nof0.api.wire``): cached payloads answered in the parser, byte for byte what
uvicorn and the Starlette app answer, and everything that is not a plain cached read left to them.

Two servers run on the same runtime: ``serve_api`` with the arena app (the hot protocol) and
``serve_api`` with the same app behind a trivial ASGI wrapper (plain httptools, every request through
Starlette). The same raw requests go to both over real sockets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import re
import socket
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import pytest

from nof0.api.app import create_app
from nof0.api.read_path import LOCAL_FRESH_MS
from nof0.api.server import serve_api
from nof0.api.spec import ALL_SPECS
from nof0.kernel.clock import FixedClock
from tests.api.conftest import NOW_MS
from tests.api.seed import load, seed_positions_file, seed_snapshot

_DATE = re.compile(rb"\r\ndate: [^\r]*\r\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def _server(rt: Any, app: Any) -> AsyncIterator[int]:
    port, stop, started = _free_port(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve_api(rt, stop, host="127.0.0.1", port=port, started=started, app=app))
    try:
        await asyncio.wait_for(started.wait(), 10)
        yield port
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


class _Plain:
    """The arena app behind a wrapper: ``serve_api`` then serves it with uvicorn's own protocol."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclasses.dataclass
class Answer:
    raw: bytes  # status line, headers and body as sent, the date header's value blanked
    status: int
    headers: dict[str, str]
    body: bytes


async def _read_answer(reader: asyncio.StreamReader, head: bool = False) -> Answer:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
    body = b""
    if not head and status not in (204, 304):
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    return Answer(_DATE.sub(b"\r\ndate: -\r\n", raw) + body, status, headers, body)


async def _exchange(port: int, requests: list[bytes], heads: list[bool] | None = None) -> list[Answer]:
    """Send ``requests`` in one write (pipelined) on one connection; the answers in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"".join(requests))
        await writer.drain()
        return [await _read_answer(reader, (heads or [False] * len(requests))[i]) for i in range(len(requests))]
    finally:
        writer.close()


def _get(path: str, *headers: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "host: nof0.test", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


@pytest.fixture
async def seeded(clock_rt):
    await seed_snapshot(clock_rt)
    await seed_positions_file(clock_rt, load("positions.json")["accountTotals"])
    return clock_rt


async def _warm(port: int) -> None:
    """One request per endpoint through the app, so the process holds every payload."""
    await _exchange(port, [_get(spec.path) for spec in ALL_SPECS.values()])


async def test_cached_reads_are_answered_in_the_parser_with_the_apps_bytes(seeded):
    app = create_app(seeded)
    async with _server(seeded, app) as hot_port, _server(seeded, _Plain(create_app(seeded))) as plain_port:
        await _warm(hot_port)
        await _warm(plain_port)
        hot = app.state.http_protocol.hot
        before = hot.served
        for spec in ALL_SPECS.values():
            identity = (await _exchange(plain_port, [_get(spec.path)]))[0]
            etag = identity.headers["etag"]
            cases = [
                (_get(spec.path), False),
                (_get(spec.path, "accept-encoding: gzip, deflate"), False),
                (_get(spec.path, "accept-encoding: gzip;q=0"), False),
                (_get(spec.path, method="HEAD"), True),
                (_get(spec.path, f"if-none-match: {etag}"), False),
                (_get(spec.path, f'if-none-match: W/{etag[:-1]}-gz"'), False),
                (_get(spec.path + "?unrelated=1"), False) if not spec.parameters else (_get(spec.path), False),
            ]
            for request, head in cases:
                answered = (await _exchange(hot_port, [request], [head]))[0]
                expected = (await _exchange(plain_port, [request], [head]))[0]
                assert answered.raw == expected.raw, request
        assert hot.served - before == 7 * len(ALL_SPECS)  # every one of them in the parser
        assert hot.sent_from_file > 0  # /api/trades' 209 KB: from its memfd, the same bytes

        gz = (await _exchange(hot_port, [_get("/api/trades", "accept-encoding: gzip")]))[0]
        assert gz.headers["content-encoding"] == "gzip"
        assert json.loads(gzip.decompress(gz.body))["trades"]
        not_modified = (await _exchange(hot_port, [_get("/api/trades", f"if-none-match: {gz.headers['etag']}")]))[0]
        assert not_modified.status == 304 and "content-length" not in not_modified.headers


async def test_what_is_not_a_plain_cached_read_goes_through_the_app(seeded):
    app = create_app(seeded)
    async with _server(seeded, app) as port:
        await _warm(port)
        hot = app.state.http_protocol.hot
        before = hot.served
        cors = (await _exchange(port, [_get("/api/trades", "origin: https://example.test")]))[0]
        assert cors.status == 200 and cors.headers["access-control-allow-origin"] == "*"
        limited = (await _exchange(port, [_get("/api/positions?limit=1")]))[0]
        assert len(json.loads(limited.body)["accountTotals"]) == 1
        full = (await _exchange(port, [_get("/api/positions")]))[0]
        assert len(json.loads(full.body)["accountTotals"]) > 1
        assert hot.served == before + 1  # only the plain read
        post = (await _exchange(port, [_get("/api/trades", "content-length: 2", method="POST") + b"{}"]))[0]
        assert post.status == 405 and json.loads(post.body)["error"] == "method_not_allowed"
        for request in (_get("/api/trades", "connection: close"), _get("/api/trades", version="1.0"),
                        _get("/api/%74rades"), _get("/api/trades/"), _get("/healthz")):
            answer = (await _exchange(port, [request]))[0]
            assert answer.status in (200, 307), request  # /api/trades/ redirects (Starlette)
        assert hot.served == before + 1
        closing = (await _exchange(port, [_get("/api/trades", "connection: close")]))[0]
        assert closing.headers["connection"] == "close"
        percent = (await _exchange(port, [_get("/api/%74rades")]))[0]
        assert percent.body == (await _exchange(port, [_get("/api/trades")]))[0].body


async def test_pipelined_requests_are_answered_in_order(seeded):
    app = create_app(seeded)
    async with _server(seeded, app) as port:
        await _warm(port)
        requests = [_get("/api/leaderboard"), _get("/healthz"), _get("/api/trades"), _get("/api/positions?limit=1"),
                    _get("/api/trades", method="HEAD"), _get("/api/leaderboard")]
        answers = await _exchange(port, requests, [False, False, False, False, True, False])
        assert [a.status for a in answers] == [200] * 6
        assert json.loads(answers[0].body) == json.loads(answers[5].body)
        assert json.loads(answers[1].body) == {"status": "ok"}
        assert "trades" in json.loads(answers[2].body)
        assert len(json.loads(answers[3].body)["accountTotals"]) == 1
        assert answers[4].body == b"" and answers[4].headers["content-length"] == answers[2].headers["content-length"]


async def test_a_payload_not_confirmed_lately_is_refreshed_through_the_app(seeded):
    clock = FixedClock(NOW_MS)
    rt = dataclasses.replace(seeded, clock=clock)
    app = create_app(rt)
    async with _server(rt, app) as port:
        await _warm(port)
        hot = app.state.http_protocol.hot
        before = hot.served
        await _exchange(port, [_get("/api/trades")])
        assert hot.served == before + 1
        clock.advance(LOCAL_FRESH_MS)  # the held bytes must be confirmed against Redis again
        await _exchange(port, [_get("/api/trades")])
        assert hot.served == before + 1
        await _exchange(port, [_get("/api/trades")])  # confirmed just now
        assert hot.served == before + 2
