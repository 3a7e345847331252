"""The market provider interface (engine.md "Market providers") and the records it speaks.

A provider answers point-in-time questions (``mids``, ``snapshot``, ``candles``) and pushes price
updates (``stream``). It never writes the store: the feed (``engine.market.feed``) batches what it
yields into ``IngestService``. Every time is in epoch milliseconds from the injected clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "AssetInfo", "AssetContext", "MarketSnapshot", "Candle", "Mids", "BookLevel", "L2Book", "TradePrint",
    "MarketProvider", "MarketError",
]


class MarketError(RuntimeError):
    """A provider could not answer (network, malformed response). Never carries a secret."""


@dataclass(frozen=True, slots=True)
class AssetInfo:
    """One entry of Hyperliquid's ``universe``."""

    name: str
    sz_decimals: int
    max_leverage: float
    only_isolated: bool = False
    is_delisted: bool = False
    margin_table_id: int | None = None


@dataclass(frozen=True, slots=True)
class AssetContext:
    """One entry of Hyperliquid's asset contexts (numbers parsed; absent ones are None)."""

    funding: float  # hourly funding rate
    open_interest: float  # in coins
    mark_px: float
    mid_px: float | None = None
    oracle_px: float | None = None
    prev_day_px: float | None = None
    day_ntl_vlm: float | None = None
    premium: float | None = None
    impact_pxs: tuple[float, ...] | None = None  # (bid, ask) impact prices
    day_base_vlm: float | None = None


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """``metaAndAssetCtxs`` at ``ts_ms``: per symbol, its metadata and its context."""

    ts_ms: int
    assets: dict[str, AssetInfo]
    contexts: dict[str, AssetContext]


@dataclass(frozen=True, slots=True)
class Candle:
    t: int  # open time, ms
    T: int  # close time, ms
    symbol: str
    interval: str  # "1m", "5m", "1h", "4h", ...
    o: float
    h: float
    l: float  # noqa: E741 - Hyperliquid's field name
    c: float
    v: float
    n: int = 0


@dataclass(frozen=True, slots=True)
class Mids:
    """Prices of several symbols observed at one time (one allMids frame or one sim step)."""

    ts_ms: int
    prices: dict[str, float]


@dataclass(frozen=True, slots=True)
class BookLevel:
    px: float
    sz: float
    n: int  # resting orders at this price


@dataclass(frozen=True, slots=True)
class L2Book:
    """Hyperliquid ``l2Book``: bids best (highest) first, asks best (lowest) first."""

    symbol: str
    ts_ms: int
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]


@dataclass(frozen=True, slots=True)
class TradePrint:
    """One public trade of the venue's ``trades`` channel (``side`` "B" = buyer took, "A" = seller took)."""

    symbol: str
    side: str
    px: float
    sz: float
    ts_ms: int
    tid: int


class MarketProvider(Protocol):
    name: str  # the key in market.yaml
    symbols: tuple[str, ...]  # the configured symbols this provider serves

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def mids(self) -> Mids: ...

    async def snapshot(self) -> MarketSnapshot: ...

    async def candles(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]: ...

    def stream(self) -> AsyncIterator[Mids]:
        """Price updates as they arrive, until ``close``; reconnects and fills gaps on its own."""
        ...
