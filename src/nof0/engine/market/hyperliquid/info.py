"""Hyperliquid's REST ``POST {base_url}/info``: timeouts, retries with backoff on 429, 5xx, timeouts and
connection errors, and the answers parsed strictly (``parse.py``).

A 429 or 5xx answer, a timeout or a refused connection is retried up to ``max_retries`` times, waiting
``Retry-After`` when the venue gives one (capped) or an exponential backoff with jitter; any other HTTP
status, or a body that is not the documented shape, raises :class:`MarketError` at once. Error messages
name the request type and the status, never the URL (it may carry credentials of a proxy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import Any

import httpx
import msgspec

from nof0.engine.market.hyperliquid import parse
from nof0.engine.market.provider import Candle, L2Book, MarketError, MarketSnapshot
from nof0.engine.market.timing import Backoff, Sleep

__all__ = ["InfoClient"]

_RETRY_AFTER_CAP_S = 30.0
_ENCODE = msgspec.json.Encoder()


def _noop(reason: str, detail: str) -> None:
    pass


class InfoClient:
    def __init__(self, base_url: str, *, timeout_s: float = 10.0, max_retries: int = 3, user_agent: str = "nof0",
                 backoff_base_s: float = 0.25, backoff_cap_s: float = 8.0, sleep: Sleep = asyncio.sleep,
                 on_retry: Callable[[str, str], None] | None = None, skip: parse.Skip = _noop,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise MarketError(f"base_url must start with http:// or https://, got {base_url.split('://')[0]!r}://...")
        self.url = base_url.rstrip("/") + "/info"
        self.max_retries = max_retries
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._sleep = sleep
        self._on_retry = on_retry or (lambda request, why: None)
        self.skip = skip
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), transport=transport,
            headers={"User-Agent": user_agent, "Content-Type": "application/json"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(self, body: dict[str, Any]) -> bytes:
        """The raw answer to one ``/info`` request, after the retries it deserves."""
        kind = body.get("type", "?")
        content = _ENCODE.encode(body)
        backoff = Backoff(*self._backoff)
        attempt = 0
        while True:
            wait: float | None = None
            try:
                r = await self._http.post(self.url, content=content)
            except httpx.TimeoutException:
                why = "timed out"
            except httpx.TransportError as exc:
                why = f"connection failed ({type(exc).__name__})"
            else:
                if r.status_code == 200:
                    return r.content
                why = f"HTTP {r.status_code}"
                if r.status_code != 429 and r.status_code < 500:
                    raise MarketError(f"info {kind}: {why}: {_excerpt(r.text)}")
                wait = _retry_after(r.headers.get("retry-after"))
            if attempt >= self.max_retries:
                raise MarketError(f"info {kind}: {why} (after {attempt + 1} attempts)")
            attempt += 1
            self._on_retry(kind, why)
            await self._sleep(wait if wait is not None else backoff.next())

    # ------------------------------------------------------------------ typed requests
    async def all_mids(self, wanted: Collection[str] | None = None) -> dict[str, float]:
        return parse.parse_mids(await self.post({"type": "allMids"}), wanted, self.skip)

    async def meta_and_asset_ctxs(self, ts_ms: int, wanted: Collection[str] | None = None) -> MarketSnapshot:
        return parse.parse_meta_and_asset_ctxs(await self.post({"type": "metaAndAssetCtxs"}), ts_ms, wanted, self.skip)

    async def candle_snapshot(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]:
        body = {"type": "candleSnapshot", "req": {"coin": coin, "interval": interval, "startTime": start_ms,
                                                 "endTime": end_ms}}
        return parse.parse_candles(await self.post(body), self.skip)

    async def l2_book(self, coin: str) -> L2Book:
        return parse.parse_l2_book(await self.post({"type": "l2Book", "coin": coin}), self.skip)


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return None if seconds is None or not seconds >= 0 else min(seconds, _RETRY_AFTER_CAP_S)


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
