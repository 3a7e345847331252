"""``GET /api/stream``: the changes writers commit, pushed to browsers as Server-Sent Events.

Every entry of the changes stream (``cache.changes``, ``nof0:changes``) becomes one event::

    id: 1764582000123-0
    event: change
    data: {"kind": "trade", "models": ["gpt-5"], "symbols": ["BTC"], "data": null}

The event id is the stream entry id. A client that reconnects sends it back as ``Last-Event-ID`` (an
``EventSource`` does so by itself) and receives every entry after it, read from Redis, then the live
ones: nothing is missed and nothing comes twice. When the entries after its id are gone (the stream
is capped, or Redis lost it) the client gets ``event: reset`` and reloads what it shows. Each
connection opens with ``event: hello`` whose id is where it starts, so even a client that has
received nothing yet resumes from there.

Live entries come from the process's one reader of the stream (``listener.ChangeListener``, which
first drops the cached responses the entries make stale, so a client that refetches on an event gets
the new facts): :class:`StreamHub` encodes each entry once and appends the bytes to every client's
buffer. A buffer is bounded (``buffer_bytes``): a client that does not read fast enough to keep its
buffer under the bound is dropped (its connection closed, its buffer freed, counted and logged); the
server and the other clients go on. The dropped client reconnects and resumes from its last id.
Several API processes each read the stream from Redis, so every process hears every writer.

Redis unreachable when a client connects: 503, and the page polls instead. Comments (``: ping``)
every ``heartbeat_s`` keep idle connections open through proxies.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable

import msgspec
from redis.exceptions import RedisError

from nof0.api.errors import Unavailable
from nof0.api.responses import error_parts
from nof0.cache.changes import MALFORMED, Change, latest_change_id, oldest_change_id, read_changes
from nof0.kernel.waiting import wait_first
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime

__all__ = ["StreamHub", "StreamLimits", "StreamEndpoint", "encode_change", "entry_key"]

log = get_logger("nof0.api.stream")

_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_encode = msgspec.json.Encoder().encode


@dataclass
class StreamLimits:
    # per client, beyond what its socket holds; past it the client is dropped. It must hold one read of
    # the listener (up to 500 entries, a few hundred bytes each) for a client that keeps up
    buffer_bytes: int = 1024 * 1024
    heartbeat_s: float = 15.0
    retry_ms: int = 2000  # the reconnection delay browsers are told
    history_count: int = 500  # entries per Redis read when a client resumes
    history_max: int = 20_000  # a client further behind than this is told to reset instead


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id (``ms-seq``) as a comparable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def encode_change(entry_id: str, change: Change) -> bytes:
    # msgspec escapes control characters, so the JSON is one line, as an SSE data field must be
    data = _encode({"kind": change.kind, "models": list(change.models), "symbols": list(change.symbols),
                    "data": change.data})
    return b"id: " + entry_id.encode() + b"\nevent: change\ndata: " + data + b"\n\n"


def _event(name: str, entry_id: str | None, data: Any) -> bytes:
    head = b"id: " + entry_id.encode() + b"\n" if entry_id is not None else b""
    return head + b"event: " + name.encode() + b"\ndata: " + _encode(data) + b"\n\n"


class Subscriber:
    """One client's bounded buffer of encoded events, filled by the hub, emptied by its connection."""

    __slots__ = ("limit", "chunks", "size", "peak", "wake", "dropped")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: deque[tuple[tuple[int, int], bytes]] = deque()
        self.size = 0
        self.peak = 0  # the most bytes this buffer ever held (tests check the bound)
        self.wake = asyncio.Event()
        self.dropped = asyncio.Event()

    def offer(self, key: tuple[int, int], chunk: bytes) -> None:
        if self.dropped.is_set():
            return
        if self.size + len(chunk) > self.limit:
            self.chunks.clear()  # free it now: the connection is closed, the client resumes by its id
            self.size = 0
            self.dropped.set()
            self.wake.set()
            return
        self.chunks.append((key, chunk))
        self.size += len(chunk)
        self.peak = max(self.peak, self.size)
        self.wake.set()

    def take(self, after: tuple[int, int]) -> tuple[tuple[int, int], bytes]:
        """Everything buffered with an id after ``after``, as one write, and the last id in it."""
        out: list[bytes] = []
        last = after
        while self.chunks:
            key, chunk = self.chunks.popleft()
            self.size -= len(chunk)
            if key > last:
                out.append(chunk)
                last = key
        self.wake.clear()
        return last, b"".join(out)


class StreamHub:
    """Fans the entries this process reads out to its SSE clients (one per process, on ``ApiState``)."""

    def __init__(self, rt: Runtime, limits: StreamLimits | None = None) -> None:
        self.rt = rt
        self.limits = limits or StreamLimits()
        self.subscribers: set[Subscriber] = set()
        self.dropped = 0  # clients dropped for being slow, since start
        self.closing = asyncio.Event()  # the server stops: every stream ends its response

    def subscribe(self) -> Subscriber:
        sub = Subscriber(self.limits.buffer_bytes)
        self.subscribers.add(sub)
        self.rt.metrics.stream_clients.set(len(self.subscribers))
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        self.rt.metrics.stream_clients.set(len(self.subscribers))

    def close(self) -> None:
        """End every stream (the server is stopping: it waits for open responses to complete)."""
        self.closing.set()

    def buffered_bytes(self) -> int:
        return sum(s.size for s in self.subscribers)

    def publish(self, entries: Iterable[tuple[str, Change]]) -> None:
        """Called by the listener after it applied ``entries``; encodes each once for every client."""
        encoded = [(entry_key(eid), encode_change(eid, c)) for eid, c in entries if c.kind != MALFORMED]
        if not encoded or not self.subscribers:
            return
        for sub in list(self.subscribers):
            was = sub.dropped.is_set()
            for key, chunk in encoded:
                sub.offer(key, chunk)
            if sub.dropped.is_set() and not was:
                self.dropped += 1
                self.rt.metrics.stream_dropped.inc()
                log.warning("stream client dropped: it reads slower than changes arrive",
                            buffer_bytes=self.limits.buffer_bytes)


class StreamEndpoint:
    """The ASGI app of ``/api/stream`` (raw ASGI: it writes as events come and watches for the client
    going away)."""

    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub
        self.rt = hub.rt

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        last_event_id = None
        for key, value in scope["headers"]:
            if key == b"last-event-id":
                last_event_id = value.decode("latin-1").strip()
        if last_event_id is not None and not _ID.fullmatch(last_event_id):
            last_event_id = None  # not one of ours: start afresh
        sub = self.hub.subscribe()  # before reading where to start: nothing falls between
        try:
            try:
                start, reset, history = await self._start(last_event_id)
            except (RedisError, OSError) as exc:
                log.warning("stream unavailable: redis", error=str(exc))
                status, headers, body = error_parts(Unavailable("the change stream is unavailable; poll instead"))
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
                (b"x-accel-buffering", b"no"), (b"x-content-type-options", b"nosniff")]})
            first = [f"retry: {self.hub.limits.retry_ms}\n\n".encode(),
                     _event("hello", start, {"resumed": last_event_id is not None and not reset})]
            if reset:
                first.append(_event("reset", None, {"reason": "the changes after Last-Event-ID are gone"}))
            last = entry_key(start)
            for eid, change in history:
                key = entry_key(eid)
                if key > last and change.kind != MALFORMED:
                    first.append(encode_change(eid, change))
                last = max(last, key)
            await self._serve(sub, receive, send, b"".join(first), last)
        finally:
            self.hub.unsubscribe(sub)

    async def _start(self, last_event_id: str | None) -> tuple[str, bool, list[tuple[str, Change]]]:
        """Where the client starts, whether it must reset, and the entries it missed."""
        redis, keys = self.rt.redis, self.rt.keys
        newest = await latest_change_id(redis, keys)
        if last_event_id is None:
            return newest, False, []
        asked = entry_key(last_event_id)
        if asked == entry_key(newest):
            return last_event_id, False, []
        oldest = await oldest_change_id(redis, keys)
        if oldest is None or asked > entry_key(newest) or asked < entry_key(oldest):
            # trimmed past it (it may have been the entry just before the oldest, but nothing tells), or
            # another stream (Redis lost it): the client reloads
            return newest, True, []
        history: list[tuple[str, Change]] = []
        after = last_event_id
        limits = self.hub.limits
        while True:
            batch = await read_changes(redis, keys, after, block_ms=0, count=limits.history_count)
            history.extend(batch)
            if len(history) > limits.history_max:
                return newest, True, []  # too far behind to replay: reloading is cheaper
            if len(batch) < limits.history_count:
                return last_event_id, False, history
            after = batch[-1][0]

    async def _serve(self, sub: Subscriber, receive: Any, send: Any, first: bytes, last: tuple[int, int]) -> None:
        _writer, _gone, dropped, closing = await wait_first(
            self._write(sub, send, first, last), _disconnected(receive), sub.dropped.wait(), self.hub.closing.wait())
        if closing.done() and not closing.cancelled() and not dropped.done():
            try:  # complete the response, so the server's shutdown does not wait for it
                async with asyncio.timeout(1.0):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            except (TimeoutError, OSError):
                pass
        # a dropped client's connection is abandoned mid-response: the server closes it

    async def _write(self, sub: Subscriber, send: Any, first: bytes, last: tuple[int, int]) -> None:
        await send({"type": "http.response.body", "body": first, "more_body": True})
        heartbeat = self.hub.limits.heartbeat_s
        while True:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancellation that
                # ends this writer when the event is set at the same moment
                async with asyncio.timeout(heartbeat):
                    await sub.wake.wait()
            except TimeoutError:
                await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})
                continue
            last, body = sub.take(last)
            if body:
                await send({"type": "http.response.body", "body": body, "more_body": True})


async def _disconnected(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
