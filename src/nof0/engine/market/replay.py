"""The ``replay`` market provider: stored ``price_ticks`` of one source and a time range, re-played at a
chosen speed through the same interface as a live venue.

The ticks of one millisecond form one ``Mids`` carrying their original time. The first is yielded at
once; the others when the injected clock has moved ``(ts - start) / speed`` past the replay's start
(``speed`` 60: an hour of history in a minute; 0: as fast as the store reads). The store is read in pages
of ``page_size`` ticks, never the whole range at once.

``mids()`` is the latest replayed price of every symbol, ``candles()`` never show what lies past the replay
position, and ``snapshot()`` serves the stored metadata (``market_assets`` / ``market_asset_ctx``) of
``meta_provider``, stamped with the replay position. Ticks a feed writes from a replay carry the
replay provider's name as their source, so they never mix with the ticks they were read from.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
from psycopg_pool import AsyncConnectionPool

from nof0.engine.market.candles import aggregate, interval_ms
from nof0.engine.market.provider import AssetContext, AssetInfo, Candle, MarketSnapshot, Mids
from nof0.engine.market.timing import Sleep
from nof0.kernel.clock import Clock
from nof0.market import repository as market_repo
from nof0.prices import repository as prices_repo

__all__ = ["ReplayMarket"]


class ReplayMarket:
    def __init__(self, name: str, *, pool: AsyncConnectionPool, source: str, symbols: Sequence[str], start_ms: int,
                 end_ms: int, speed: float, clock: Clock, meta_provider: str | None = None, loop: bool = False,
                 page_size: int = 5000, sleep: Sleep = asyncio.sleep) -> None:
        if end_ms <= start_ms:
            raise ValueError(f"replay {name!r}: end ({end_ms}) must be after start ({start_ms})")
        self.name = name
        self.symbols = tuple(symbols)
        self.source = source
        self.start_ms, self.end_ms = start_ms, end_ms
        self.speed = speed
        self.clock = clock
        self.meta_provider = meta_provider or source
        self.loop = loop
        self.page_size = page_size
        self._pool = pool
        self._sleep = sleep
        self._closed = asyncio.Event()
        self.position_ms = start_ms
        self.latest: dict[str, float] = {}

    async def start(self) -> None:
        self._closed.clear()

    async def close(self) -> None:
        self._closed.set()

    async def _page(self, after: tuple[int, str] | None, start_ms: int, end_ms: int, symbols: Sequence[str]
                    ) -> list[tuple[int, str, float]]:
        async with self._pool.connection() as conn:
            return await prices_repo.list_ticks_between(
                conn, source=self.source, symbols=list(symbols), start_ms=start_ms, end_ms=end_ms, after=after,
                limit=self.page_size,
            )

    async def _ticks(self, start_ms: int | None = None, end_ms: int | None = None,
                     symbols: Sequence[str] | None = None) -> AsyncIterator[list[tuple[int, str, float]]]:
        after = None
        lo, hi = start_ms if start_ms is not None else self.start_ms, end_ms if end_ms is not None else self.end_ms
        while page := await self._page(after, lo, hi, symbols or self.symbols):
            yield page
            if len(page) < self.page_size:
                return
            after = (page[-1][0], page[-1][1])

    async def _groups(self) -> AsyncIterator[Mids]:
        """The stored ticks as one Mids per millisecond (a millisecond split across pages is joined)."""
        ts, prices = None, {}
        async for page in self._ticks():
            for tick_ts, symbol, px in page:
                if tick_ts != ts and prices:
                    yield Mids(ts, prices)
                    prices = {}
                ts = tick_ts
                prices[symbol] = px
        if prices:
            yield Mids(ts, prices)

    async def stream(self) -> AsyncIterator[Mids]:
        while not self._closed.is_set():
            wall0 = self.clock.now_ms()
            async for mids in self._groups():
                if self.speed > 0:
                    wait_ms = wall0 + (mids.ts_ms - self.start_ms) / self.speed - self.clock.now_ms()
                    if wait_ms > 0:
                        await self._sleep(wait_ms / 1000)
                if self._closed.is_set():
                    return
                self.position_ms = mids.ts_ms
                self.latest.update(mids.prices)
                yield mids
            if not self.loop:
                return
            self.latest.clear()

    async def mids(self) -> Mids:
        return Mids(self.position_ms, dict(self.latest))

    async def snapshot(self) -> MarketSnapshot:
        async with self._pool.connection() as conn:
            assets = await market_repo.list_assets(conn, self.meta_provider, self.symbols)
            ctxs = await market_repo.list_asset_ctxs(conn, self.meta_provider, self.symbols)
        return MarketSnapshot(
            self.position_ms, {r["symbol"]: _asset(r) for r in assets}, {r["symbol"]: _context(r) for r in ctxs},
        )

    async def candles(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]:
        iv = interval_ms(interval)
        lo, hi = max(start_ms // iv * iv, self.start_ms), min(end_ms, self.position_ms + 1)
        if hi <= lo:
            return []
        times: list[int] = []
        prices: list[float] = []
        async for page in self._ticks(start_ms=lo, end_ms=hi, symbols=[symbol]):
            times.extend(t[0] for t in page)
            prices.extend(t[2] for t in page)
        return aggregate(symbol, interval, np.array(times, dtype=np.int64), np.array(prices))


def _asset(row: dict[str, Any]) -> AssetInfo:
    return AssetInfo(name=row["name"], sz_decimals=row["sz_decimals"], max_leverage=row["max_leverage"],
                     only_isolated=bool(row["only_isolated"]), is_delisted=bool(row["is_delisted"]),
                     margin_table_id=row["margin_table_id"])


def _context(row: dict[str, Any]) -> AssetContext:
    impact = row["impact_pxs"]
    return AssetContext(
        funding=row["funding"], open_interest=row["open_interest"], mark_px=row["mark_px"], mid_px=row["mid_px"],
        oracle_px=row["oracle_px"], prev_day_px=row["prev_day_px"], day_ntl_vlm=row["day_ntl_vlm"],
        premium=row["premium"], impact_pxs=tuple(impact) if impact is not None else None,
        day_base_vlm=row["day_base_vlm"],
    )
