"""``/api/stream`` over real HTTP: resume with Last-Event-ID without a gap, reset when the changes are gone,
a slow client dropped with its buffer bounded, every API process hearing every writer, 503 without Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any, AsyncIterator

import httpx
import msgspec

from nof0.api.app import create_app
from nof0.api.server import serve_api
from nof0.api.stream import encode_change, entry_key
from nof0.cache.changes import Change, announce
from nof0.runtime import Servers, open_runtime
from tests.api.conftest import client_for

WAIT_S = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(rt: Any, app: Any = None) -> AsyncIterator[tuple[str, Any]]:
    """``serve_api`` on a free port (the app's lifespan runs its change listener)."""
    app = app or create_app(rt)
    port, stop, started = _free_port(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve_api(rt, stop, host="127.0.0.1", port=port, started=started, app=app))
    await asyncio.wait_for(started.wait(), WAIT_S)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)  # open streams end with the server


class Events:
    """Server-sent events of one response, parsed as a browser does."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self) -> dict[str, Any]:
        event: dict[str, Any] = {}
        while True:
            line = await asyncio.wait_for(self.lines.__anext__(), WAIT_S)
            if line == "":
                if "data" in event:
                    event["json"] = json.loads(event["data"])
                    return event
                event = {}
            elif line.startswith(":"):
                continue  # a comment (heartbeat)
            else:
                name, _, value = line.partition(":")
                event[name] = value[1:] if value.startswith(" ") else value

    async def changes(self, n: int) -> list[dict[str, Any]]:
        out = []
        while len(out) < n:
            ev = await self.next()
            assert ev.get("event") == "change", ev
            out.append(ev)
        return out


@contextlib.asynccontextmanager
async def stream(base: str, last_event_id: str | None = None) -> AsyncIterator[tuple[Events, dict[str, Any]]]:
    headers = {"accept": "text/event-stream"}
    if last_event_id is not None:
        headers["last-event-id"] = last_event_id
    async with httpx.AsyncClient(base_url=base, timeout=WAIT_S) as client:
        async with client.stream("GET", "/api/stream", headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = Events(response)
            hello = await events.next()
            assert hello["event"] == "hello", hello
            yield events, hello


def _trade(n: int) -> Change:
    return Change("trade", models=("m1",), symbols=("BTC",), data={"n": n})


def _numbers(events: list[dict[str, Any]]) -> list[int]:
    return [e["json"]["data"]["n"] for e in events]


async def test_a_client_that_reconnects_misses_nothing(rt):
    async with serving(rt) as (base, app):
        async with stream(base) as (events, hello):
            assert hello["json"] == {"resumed": False}
            await announce(rt, [_trade(n) for n in range(3)])
            got = await events.changes(3)
            assert _numbers(got) == [0, 1, 2]
            assert [e["json"]["kind"] for e in got] == ["trade"] * 3 and got[0]["json"]["models"] == ["m1"]
            ids = [e["id"] for e in got]
            assert ids == sorted(ids, key=entry_key) and len(set(ids)) == 3
        # while it is away, more is committed; it comes back with the last id it saw
        await announce(rt, [_trade(n) for n in range(3, 8)])
        async with stream(base, last_event_id=ids[1]) as (events, hello):
            assert hello["json"] == {"resumed": True} and hello["id"] == ids[1]
            replayed = await events.changes(6)
            assert _numbers(replayed) == [2, 3, 4, 5, 6, 7]  # from after its id: no gap, no repeat
            await announce(rt, [_trade(8)])  # and live ones follow the replay
            assert _numbers(await events.changes(1)) == [8]


async def test_reconnecting_while_changes_keep_coming(rt):
    """Changes committed while the client connects, reads its history and switches to live ones:
    each arrives exactly once (the client subscribes before it reads where to start)."""
    total = 300
    async with serving(rt) as (base, app):
        async with stream(base) as (events, hello):
            async def writer() -> None:
                for n in range(total):
                    await announce(rt, [_trade(n)])

            writing = asyncio.create_task(writer())
            first = await events.changes(20)
            seen = _numbers(first)
            last = first[-1]["id"]
        while len(seen) < total:  # reconnect as often as it takes, each time from the last id seen
            async with stream(base, last_event_id=last) as (events, hello):
                batch = await events.changes(min(37, total - len(seen)))
                seen += _numbers(batch)
                last = batch[-1]["id"]
        await writing
    assert seen == list(range(total))


async def test_a_client_whose_changes_are_gone_is_told_to_reset(rt, redis_sync):
    async with serving(rt) as (base, app):
        await announce(rt, [_trade(0), _trade(1)])
        async with stream(base) as (events, hello):
            await announce(rt, [_trade(2)])
            (seen,) = await events.changes(1)
        # Redis lost the stream (or the cap trimmed past the client): the page reloads instead
        redis_sync.delete(rt.keys.changes_stream().name)
        await announce(rt, [_trade(3)])
        async with stream(base, last_event_id=seen["id"]) as (events, hello):
            assert hello["json"] == {"resumed": False}
            reset = await events.next()
            assert reset["event"] == "reset"
            await announce(rt, [_trade(4)])
            assert _numbers(await events.changes(1)) == [4]
        # an id that is not one of ours is a fresh start
        async with stream(base, last_event_id="not-an-id") as (events, hello):
            assert hello["json"] == {"resumed": False}


async def test_a_slow_client_is_dropped_with_its_buffer_bounded(rt):
    app = create_app(rt)
    hub = app.state.api.stream
    limit = hub.limits.buffer_bytes = 64 * 1024
    async with serving(rt, app) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        loop = asyncio.get_running_loop()
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # it reads nothing more after its hello
        slow.setblocking(False)
        await loop.sock_connect(slow, ("127.0.0.1", port))
        await loop.sock_sendall(slow, b"GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        head = b""
        while b"event: hello" not in head:
            head += await asyncio.wait_for(loop.sock_recv(slow, 4096), WAIT_S)
        (slow_sub,) = hub.subscribers
        try:
            async with stream(base) as (events, _hello):
                # batches the fast client reads before the next is announced (each under the bound),
                # until the slow client, reading nothing, has more than the bound waiting
                pad, size, n = "x" * 5_000, 10, 0
                while not slow_sub.dropped.is_set():
                    assert n < 50_000, "the slow client was never dropped"
                    await announce(rt, [Change("price_tick", symbols=("BTC",), data={"n": i, "pad": pad})
                                        for i in range(n, n + size)])
                    assert _numbers(await events.changes(size)) == list(range(n, n + size))
                    n += size
                assert hub.dropped == 1
                assert slow_sub.peak <= limit and slow_sub.size == 0  # never more than the bound; freed
                # the fast client goes on, and the server answers as before
                await announce(rt, [_trade(-1)])
                assert _numbers(await events.changes(1)) == [-1]
                async with httpx.AsyncClient(base_url=base) as other:
                    assert (await other.get("/healthz")).status_code == 200
                # the slow client's connection is closed: what the kernel held drains, then EOF
                while await asyncio.wait_for(loop.sock_recv(slow, 1 << 20), WAIT_S):
                    pass
                assert slow_sub not in hub.subscribers and len(hub.subscribers) == 1
        finally:
            slow.close()
        text = rt.metrics.registry.get_sample_value("nof0_stream_dropped_total")
        assert text == 1.0


async def test_every_api_process_hears_every_writer(rt, config):
    """Two API processes (two runtimes, each its own app and listener) stream the same change: they read
    Redis, not the writer's memory."""
    servers = Servers(config.root.postgres.dsn, config.root.redis.url)
    async with open_runtime(config, servers) as rt2:
        async with serving(rt) as (base1, _), serving(rt2) as (base2, _):
            async with stream(base1) as (one, _), stream(base2) as (two, _):
                await announce(rt, [Change("equity_snapshot", models=("m1",), data=None)])
                a, b = (await one.changes(1))[0], (await two.changes(1))[0]
                assert a["id"] == b["id"] and a["json"] == b["json"] == {
                    "kind": "equity_snapshot", "models": ["m1"], "symbols": [], "data": None}


async def test_without_redis_the_stream_answers_503(dead_redis_rt):
    async with client_for(dead_redis_rt) as client:
        r = await client.get("/api/stream")
    assert r.status_code == 503 and r.json()["error"] == "unavailable"


def test_an_event_is_one_data_line():
    chunk = encode_change("17-3", Change("conversation_message", models=("m",), data={"t": "a\nb\r\n\u2028"}))
    lines = chunk.split(b"\n")
    assert lines[:2] == [b"id: 17-3", b"event: change"] and chunk.endswith(b"\n\n")
    assert lines[2].startswith(b"data: ") and len(lines) == 5
    assert msgspec.json.decode(lines[2][6:])["data"] == {"t": "a\nb\r\n\u2028"}
