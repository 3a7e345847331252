"""One WebSocket connection to Hyperliquid: subscriptions, the heartbeat and decoded frames.

The venue's socket is at the host of ``base_url`` with the scheme swapped (http -> ws, https -> wss) and
path ``/ws``. Every ``ping_interval_s`` the client sends ``{"method":"ping"}``; the venue answers
``{"channel":"pong"}``. No pong within ``pong_timeout_s`` means the connection went silent (a half-open
TCP connection, a stuck proxy): it is aborted and :class:`SilentConnection` raised, so the provider
replaces it. The heartbeat is the venue's own message, not WebSocket protocol pings, because that is what
its servers watch for activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from nof0.engine.market.hyperliquid.parse import Frame, MalformedResponse, Skip, decode_frame
from nof0.engine.market.provider import MarketError

__all__ = ["ws_url", "SilentConnection", "WsConnection", "PING"]

PING = '{"method":"ping"}'
_ENCODE = msgspec.json.Encoder()


def ws_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise MarketError("base_url must be an http:// or https:// URL with a host")
    return urlunsplit((scheme, parts.netloc, "/ws", "", ""))


class SilentConnection(ConnectionError):
    """The venue stopped answering the heartbeat."""


class WsConnection:
    def __init__(self, ws: ClientConnection, *, ping_interval_s: float, pong_timeout_s: float, skip: Skip) -> None:
        self.ws = ws
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.skip = skip
        self.silent = False
        self._pong = asyncio.Event()

    async def subscribe(self, subscriptions: Sequence[dict[str, Any]]) -> None:
        for sub in subscriptions:
            await self.ws.send(_ENCODE.encode({"method": "subscribe", "subscription": sub}).decode())

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval_s)
            self._pong.clear()
            await self.ws.send(PING)
            try:
                await asyncio.wait_for(self._pong.wait(), self.pong_timeout_s)
            except TimeoutError:
                self.silent = True
                self.ws.transport.abort()  # no close handshake with a peer that does not answer
                return

    async def frames(self) -> AsyncIterator[Frame]:
        """Decoded frames other than pongs, until the connection ends (ConnectionClosed, or
        SilentConnection when the heartbeat gave up on it). Malformed frames are skipped."""
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            async for raw in self.ws:
                try:
                    frame = decode_frame(raw)
                except MalformedResponse as exc:
                    self.skip("malformed_frame", str(exc))
                    continue
                if frame.channel == "pong":
                    self._pong.set()
                    continue
                yield frame
        except ConnectionClosed:
            if self.silent:
                raise SilentConnection("no pong within the heartbeat timeout") from None
            raise
        finally:
            heartbeat.cancel()
        if self.silent:
            raise SilentConnection("no pong within the heartbeat timeout")
