"""The ``hyperliquid`` market provider (mainnet or testnet by ``base_url``): REST ``/info`` for point-in-time
answers, the WebSocket ``allMids`` feed for ``stream()``.

``stream()`` never ends on its own before ``close()``: a dropped connection, a silent one (heartbeat) or a
failed connect is counted (``nof0_market_reconnects_total{reason}``) and replaced after an exponential
backoff with jitter; the new connection subscribes again, and the prices missed meanwhile are filled by
one REST ``allMids`` (``nof0_market_gaps_total``) yielded before the stream goes on. Candle and trade
frames (when configured) go to the ``on_candle`` / ``on_trades`` listeners.

Only the configured symbols pass (all perps of the last snapshot when none are configured); a price that
is no positive number, a malformed frame or a symbol the venue does not list is skipped and counted.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from nof0.engine.market.hyperliquid import parse
from nof0.engine.market.hyperliquid.info import InfoClient
from nof0.engine.market.hyperliquid.ws import SilentConnection, WsConnection, ws_url
from nof0.engine.market.provider import Candle, L2Book, MarketError, MarketSnapshot, Mids, TradePrint
from nof0.engine.market.skips import SkipLog
from nof0.engine.market.timing import Backoff, Sleep
from nof0.kernel.clock import Clock
from nof0.obs.logging import get_logger
from nof0.obs.metrics import Metrics

__all__ = ["HyperliquidMarket"]

log = get_logger("nof0.engine.market.hyperliquid")


class HyperliquidMarket:
    def __init__(self, name: str, *, base_url: str, symbols: Sequence[str], clock: Clock,
                 metrics: Metrics | None = None, timeout_s: float = 10.0, max_retries: int = 3,
                 user_agent: str = "nof0", ping_interval_s: float = 20.0, pong_timeout_s: float = 10.0,
                 reconnect_min_s: float = 0.5, reconnect_max_s: float = 30.0,
                 candle_intervals: Sequence[str] = (), trades: bool = False, sleep: Sleep = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.name = name
        self.symbols = tuple(symbols)
        self.base_url = base_url
        self.ws_url = ws_url(base_url)
        self.clock = clock
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.user_agent = user_agent
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.reconnect = (reconnect_min_s, reconnect_max_s)
        self.candle_intervals = tuple(candle_intervals)
        self.trades = trades
        self.on_candle: list[Callable[[Candle], None]] = []
        self.on_trades: list[Callable[[list[TradePrint]], None]] = []
        self.skip = SkipLog(name, metrics)
        self.reconnects: dict[str, int] = {}
        self.gaps = 0
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._listed: frozenset[str] = frozenset()
        self._last_ms = 0
        self._info: InfoClient | None = None
        self._closed = asyncio.Event()
        self._ws: Any = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._closed.clear()
        if self._info is None:
            self._info = InfoClient(
                self.base_url, timeout_s=self.timeout_s, max_retries=self.max_retries, user_agent=self.user_agent,
                sleep=self._sleep, on_retry=self._retried, skip=self.skip,
            )

    async def close(self) -> None:
        self._closed.set()
        if self._ws is not None:
            await self._ws.close()
        if self._info is not None:
            await self._info.aclose()
            self._info = None

    @property
    def info(self) -> InfoClient:
        if self._info is None:
            raise MarketError(f"market provider {self.name!r} is not started")
        return self._info

    def _retried(self, request: str, why: str) -> None:
        if self.metrics is not None:
            self.metrics.market_errors.labels(self.name, "retry").inc()
        log.info("info request retried", provider=self.name, request=request, why=why)

    def wanted(self) -> frozenset[str]:
        """The symbols this provider passes on: the configured ones, else the perps of the last snapshot."""
        return frozenset(self.symbols) if self.symbols else self._listed

    # ------------------------------------------------------------------ REST
    def _stamp(self) -> int:
        """The receipt time of a price update (the venue's allMids carry none), one millisecond past the
        previous one when several arrive within a millisecond: every update keeps its own ticks (the
        store keeps one price per symbol, source and millisecond)."""
        self._last_ms = max(self.clock.now_ms(), self._last_ms + 1)
        return self._last_ms

    async def mids(self) -> Mids:
        prices = await self.info.all_mids(self.wanted())
        return Mids(self._stamp(), prices)

    async def snapshot(self) -> MarketSnapshot:
        snap = await self.info.meta_and_asset_ctxs(self.clock.now_ms(), self.symbols or None)
        if not self.symbols:
            self._listed = frozenset(snap.assets)
        return snap

    async def candles(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]:
        return await self.info.candle_snapshot(symbol, interval, start_ms, end_ms)

    async def l2_book(self, symbol: str) -> L2Book:
        return await self.info.l2_book(symbol)

    # ------------------------------------------------------------------ WebSocket
    def subscriptions(self) -> list[dict[str, Any]]:
        subs: list[dict[str, Any]] = [{"type": "allMids"}]
        for coin in self.symbols:
            subs += [{"type": "candle", "coin": coin, "interval": iv} for iv in self.candle_intervals]
            if self.trades:
                subs.append({"type": "trades", "coin": coin})
        return subs

    def _count_reconnect(self, reason: str) -> None:
        self.reconnects[reason] = self.reconnects.get(reason, 0) + 1
        if self.metrics is not None:
            self.metrics.market_reconnects.labels(self.name, reason).inc()

    async def _gap_fill(self) -> Mids | None:
        self.gaps += 1
        if self.metrics is not None:
            self.metrics.market_gaps.labels(self.name).inc()
        try:
            return await self.mids()
        except MarketError as exc:
            if self.metrics is not None:
                self.metrics.market_errors.labels(self.name, "gap_fill").inc()
            log.warning("gap fill by REST failed; the stream goes on", provider=self.name, error=str(exc))
            return None

    def _frame(self, frame: parse.Frame) -> Mids | None:
        channel = frame.channel
        if channel == "allMids":
            try:
                prices = parse.parse_mids(frame.data, self.wanted(), self.skip, frame_data=True)
            except parse.MalformedResponse as exc:
                self.skip("malformed_frame", str(exc))
                return None
            return Mids(self._stamp(), prices) if prices else None
        if channel == "candle":
            candle = parse.parse_candle(frame.data, self.skip)
            if candle is not None:
                for listener in self.on_candle:
                    listener(candle)
        elif channel == "trades":
            try:
                prints = parse.parse_trades(frame.data, self.skip)
            except parse.MalformedResponse as exc:
                self.skip("malformed_frame", str(exc))
                return None
            for listener in self.on_trades:
                listener(prints)
        elif channel == "error":
            self.skip("venue_error", bytes(frame.data).decode(errors="replace")[:200])
        return None

    async def stream(self) -> AsyncIterator[Mids]:
        backoff = Backoff(*self.reconnect, rng=self._rng)
        had_connection = False
        while not self._closed.is_set():
            try:
                async with connect(self.ws_url, open_timeout=self.timeout_s, ping_interval=None, close_timeout=1,
                                   user_agent_header=self.user_agent) as ws:
                    self._ws = ws
                    conn = WsConnection(ws, ping_interval_s=self.ping_interval_s, pong_timeout_s=self.pong_timeout_s,
                                        skip=self.skip)
                    await conn.subscribe(self.subscriptions())
                    log.info("websocket subscribed", provider=self.name, subscriptions=len(self.subscriptions()))
                    if had_connection and (gap := await self._gap_fill()) is not None and gap.prices:
                        yield gap
                    had_connection = True
                    async for frame in conn.frames():
                        mids = self._frame(frame)
                        if mids is not None:
                            backoff.reset()
                            yield mids
                reason = "closed"
            except SilentConnection:
                reason = "silent"
            except ConnectionClosed:
                reason = "dropped"
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                reason = "connect_failed"
                log.debug("websocket connect failed", provider=self.name, error=f"{type(exc).__name__}: {exc}")
            finally:
                self._ws = None
            if self._closed.is_set():
                return
            self._count_reconnect(reason)
            delay = backoff.next()
            log.warning("websocket lost; reconnecting", provider=self.name, reason=reason, in_s=round(delay, 3))
            await self._sleep(delay)
