"""A local fake of Hyperliquid's market API, for tests and benchmarks: ``POST /info`` and the WebSocket
``/ws`` on 127.0.0.1 at an ephemeral port, answering from recorded responses (tests/fixtures/hyperliquid).

Scriptable from the test's event loop:

* ``fake.mids`` / ``fake.meta`` / ``fake.candles`` / ``fake.books``: what ``/info`` answers;
  ``fake.script(kind, Reply(status=429), Reply(body=b"not json"), Reply(delay_s=5))`` answers the next
  requests of a kind that way first.
* ``await fake.push_mids({...})``, ``await fake.send_raw(text)``: frames to every subscribed client.
* ``await fake.drop()``: close every WebSocket connection; ``fake.silent = True``: keep connections open
  but answer nothing (no pong, no data) - a half-open connection as the client sees it.
* ``await fake.wait_for(lambda: fake.subscriptions >= 2)``: events, not sleeps, to wait on.

``fake.requests`` records every ``/info`` body; ``fake.connections`` counts accepted sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hyperliquid"

__all__ = ["FakeHyperliquid", "Reply", "fixture", "FIXTURES"]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class Reply:
    status: int = 200
    body: bytes | None = None  # None: the normal answer
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class _Conn:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.subscriptions: list[dict[str, Any]] = []
        self.lock = asyncio.Lock()
        self.open = True

    async def send(self, text: str) -> None:
        async with self.lock:
            if self.open:
                await self.ws.send_text(text)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self):
        yield

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        self.ready.set()


class FakeHyperliquid:
    def __init__(self, *, port: int = 0) -> None:
        self.mids: dict[str, str] = fixture("all_mids.json")
        self.meta: Any = fixture("meta_and_asset_ctxs.json")
        self.candles: dict[tuple[str, str], list[dict[str, Any]]] = {("BTC", "4h"): fixture("candle_snapshot.json")}
        self.books: dict[str, Any] = {"BTC": fixture("l2_book.json")}
        self.requests: list[dict[str, Any]] = []
        self.silent = False
        self.connections = 0
        self.subscriptions = 0
        self.pings = 0
        self.sent_frames = 0
        self._scripts: dict[str, deque[Reply]] = {}
        self._conns: set[_Conn] = set()
        self._changed = asyncio.Condition()
        self._server: _Server | None = None
        self._task: asyncio.Task | None = None
        self.port = port  # 0: an ephemeral one

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> "FakeHyperliquid":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/info", self._info, methods=["POST"]), WebSocketRoute("/ws", self._ws)])
        self._server = _Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False,
                                              ws_ping_interval=None, timeout_graceful_shutdown=1))
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        await asyncio.wait({self._task, asyncio.ensure_future(self._server.ready.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            self._task.result()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.drop()
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    # ------------------------------------------------------------------ scripting
    def script(self, kind: str, *replies: Reply) -> None:
        self._scripts.setdefault(kind, deque()).extend(replies)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def requests_of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("type") == kind]

    async def push_mids(self, mids: dict[str, str], *, update: bool = True) -> float:
        """Send an allMids frame to every allMids subscriber; returns time.perf_counter() just before the send."""
        if update:
            self.mids.update(mids)
        return await self.send_raw(json.dumps({"channel": "allMids", "data": {"mids": mids}}), channel="allMids")

    async def send_raw(self, text: str, *, channel: str | None = None) -> float:
        sent_at = time.perf_counter()
        for conn in list(self._conns):
            if channel is None or any(s.get("type") == channel for s in conn.subscriptions):
                try:
                    await conn.send(text)
                except Exception:  # noqa: BLE001 - a client gone mid-send is the test's business, not ours
                    conn.open = False
        self.sent_frames += 1
        return sent_at

    async def drop(self) -> None:
        """Close every WebSocket connection (the client sees the server go away)."""
        for conn in list(self._conns):
            async with conn.lock:
                if conn.open:
                    conn.open = False
                    with contextlib.suppress(Exception):
                        await conn.ws.close(code=1012)

    @property
    def open_connections(self) -> int:
        return sum(1 for c in self._conns if c.open)

    # ------------------------------------------------------------------ HTTP /info
    async def _info(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return Response("Failed to deserialize the JSON body", status_code=422)
        self.requests.append(body)
        await self._notify()
        kind = body.get("type")
        script = self._scripts.get(kind)
        reply = script.popleft() if script else Reply()
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.status != 200 or reply.body is not None:
            return Response(reply.body or b"", status_code=reply.status, headers=reply.headers,
                            media_type="application/json")
        answer = self._answer(kind, body)
        if answer is None:
            return Response("Failed to deserialize the JSON body", status_code=422)
        return Response(json.dumps(answer), media_type="application/json")

    def _answer(self, kind: str | None, body: dict[str, Any]) -> Any:
        if kind == "allMids":
            return self.mids
        if kind == "metaAndAssetCtxs":
            return self.meta
        if kind == "candleSnapshot":
            req = body.get("req", {})
            rows = self.candles.get((req.get("coin"), req.get("interval")), [])
            start, end = req.get("startTime", 0), req.get("endTime") or 2**62
            return [c for c in rows if start <= c["t"] <= end]
        if kind == "l2Book":
            return self.books.get(body.get("coin"))
        return None

    # ------------------------------------------------------------------ WebSocket /ws
    async def _ws(self, websocket: WebSocket) -> None:
        await websocket.accept()
        conn = _Conn(websocket)
        self._conns.add(conn)
        self.connections += 1
        await self._notify()
        try:
            while True:
                msg = json.loads(await websocket.receive_text())
                if self.silent:
                    continue
                if msg.get("method") == "ping":
                    self.pings += 1
                    await conn.send('{"channel":"pong"}')
                elif msg.get("method") == "subscribe":
                    conn.subscriptions.append(msg.get("subscription", {}))
                    self.subscriptions += 1
                    await conn.send(json.dumps({"channel": "subscriptionResponse", "data": msg}))
                await self._notify()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            conn.open = False
            self._conns.discard(conn)
            await self._notify()
