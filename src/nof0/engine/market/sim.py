"""The ``sim`` market provider: deterministic, seeded prices and asset contexts, so the arena runs
with no network (engine.md "Market providers").

Every price is a pure function of ``(seed, symbol, time)``: step ``k`` starts at ``anchor + k * tick``
and its price is ``P0 * exp(sigma * W[k])``, ``W`` a standard random walk (``W[0] = 0``, so the anchor
time shows the asset's starting price) and ``sigma`` the per-step volatility from the asset's daily one.
The walk is generated in blocks of 4,096 steps whose sums are drawn first (superblocks of 4,096 blocks
likewise) and bridged down to their steps, each block from its own seeded generator: the price at any
time, past or future, costs a few blocks, never the whole path since the anchor. So the same seed and
clock give the same prices in every process and after every restart, and candles of any past range come
from the same path the stream showed. Prices are rounded like Hyperliquid's (5 significant figures, at
most ``6 - szDecimals`` decimals).

Asset contexts (funding, open interest, premium, volume) are drawn per hour from the same seed around
each asset's configured level; ``prevDayPx`` is the path's price 24 hours earlier.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from nof0.engine.market.candles import aggregate, interval_ms
from nof0.engine.market.provider import AssetContext, AssetInfo, Candle, MarketError, MarketSnapshot, Mids
from nof0.engine.market.timing import Sleep
from nof0.kernel.clock import Clock

__all__ = ["SimAsset", "SIM_ASSETS", "SimMarket", "round_prices"]

_BLOCK = 4096
_SUPER = _BLOCK * _BLOCK
_HOUR_MS, _DAY_MS = 3_600_000, 86_400_000
_MAX_CANDLE_POINTS = 2_000_000  # a longer candle request samples the path with a stride


@dataclass(frozen=True, slots=True)
class SimAsset:
    price: float  # at the anchor time
    volatility: float  # daily, as a fraction (0.03 = 3 % a day)
    sz_decimals: int
    max_leverage: float
    funding: float  # hourly rate around which the funding moves
    open_interest_usd: float
    day_volume_usd: float


# Levels of late October 2025 (Hyperliquid's szDecimals and maxLeverage of the time).
SIM_ASSETS: dict[str, SimAsset] = {
    "BTC": SimAsset(111_300.0, 0.025, 5, 40, 0.0000125, 3.4e9, 3.0e9),
    "ETH": SimAsset(3_930.0, 0.035, 4, 25, 0.0000110, 5.8e9, 2.2e9),
    "SOL": SimAsset(195.0, 0.045, 2, 20, 0.0000125, 7.5e8, 6.5e8),
    "BNB": SimAsset(1_110.0, 0.030, 3, 10, 0.0000125, 5.0e7, 5.0e7),
    "DOGE": SimAsset(0.198, 0.050, 0, 10, 0.0000125, 1.4e8, 1.4e8),
    "XRP": SimAsset(2.63, 0.045, 0, 20, 0.0000125, 1.5e8, 2.0e8),
}


def round_prices(px: np.ndarray, sz_decimals: int) -> np.ndarray:
    """Hyperliquid's perp price rule: 5 significant figures and at most ``6 - szDecimals`` decimals (an
    integer divided by a power of ten: the nearest double to the decimal, so it prints short)."""
    decimals = np.clip(4 - np.floor(np.log10(px)).astype(np.int64), 0, max(0, 6 - sz_decimals))
    scale = 10.0 ** decimals
    return np.round(px * scale) / scale


def _symbol_key(symbol: str) -> int:
    return int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:8], "big")


def _zigzag(n: int) -> int:
    return 2 * n if n >= 0 else -2 * n - 1


class _Walk:
    """The standard random walk of one symbol: ``at(k)`` = the sum of its first ``k`` steps (negative
    ``k``: minus the sum of the steps ``k .. -1``)."""

    def __init__(self, seed: int, symbol: str) -> None:
        self._entropy = (seed, _symbol_key(symbol))
        self._supers: OrderedDict[int, float] = OrderedDict()  # W at the start of superblock n
        self._block_sums: OrderedDict[int, np.ndarray] = OrderedDict()  # per superblock: W at each block start
        self._steps: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()  # per block: W at each step

    def _normal(self, size: int, *where: int) -> np.ndarray:
        ss = np.random.SeedSequence([*self._entropy, *where])
        return np.random.default_rng(ss).standard_normal(size)

    def _super_total(self, n: int) -> float:
        return float(_BLOCK * self._normal(1, 2, _zigzag(n))[0])  # N(0, BLOCK**2): the sum of BLOCK**2 steps

    def _super_start(self, n: int) -> float:
        if n in self._supers:
            return self._supers[n]
        if n >= 0:
            value = math.fsum(self._super_total(m) for m in range(n))
        else:
            value = -math.fsum(self._super_total(m) for m in range(n, 0))
        return _remember(self._supers, n, value, 64)

    def _blocks(self, n: int) -> np.ndarray:
        cached = self._block_sums.get(n)
        if cached is not None:
            return cached
        sums = math.sqrt(_BLOCK) * self._normal(_BLOCK, 1, _zigzag(n))
        sums += (self._super_total(n) - sums.sum()) / _BLOCK  # bridged to the superblock's total
        starts = np.concatenate(([0.0], np.cumsum(sums)[:-1]))
        return _remember(self._block_sums, n, np.stack([starts, sums]), 16)

    def _block(self, n: int, j: int) -> np.ndarray:
        cached = self._steps.get((n, j))
        if cached is not None:
            return cached
        start, total = self._blocks(n)[:, j]
        steps = self._normal(_BLOCK, 0, _zigzag(n), j)
        steps += (total - steps.sum()) / _BLOCK  # bridged to the block's sum
        values = self._super_start(n) + start + np.concatenate(([0.0], np.cumsum(steps)[:-1]))
        return _remember(self._steps, (n, j), values, 512)

    def at(self, k: int) -> float:
        n, rest = divmod(k, _SUPER)
        j, i = divmod(rest, _BLOCK)
        return float(self._block(n, j)[i])

    def span(self, k0: int, k1: int, stride: int = 1) -> np.ndarray:
        """W at ``k0, k0 + stride, ... < k1``."""
        ks = np.arange(k0, k1, stride, dtype=np.int64)
        out = np.empty(ks.size)
        if not ks.size:
            return out
        blocks = ks // _BLOCK
        edges = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1], True])
        for a, b in zip(edges[:-1], edges[1:]):
            n, j = divmod(int(blocks[a]), _BLOCK)
            out[a:b] = self._block(n, j)[ks[a:b] - int(blocks[a]) * _BLOCK]
        return out


def _remember(cache: OrderedDict, key, value, size: int):
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)
    return value


class SimMarket:
    """``MarketProvider`` over the seeded paths of ``symbols``."""

    def __init__(self, name: str, symbols: Sequence[str], *, clock: Clock, seed: int = 0,
                 tick_interval_s: float = 1.0, anchor_ms: int = 1_761_436_800_000, volatility_scale: float = 1.0,
                 assets: Mapping[str, SimAsset] | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.name = name
        self.symbols = tuple(symbols)
        self.clock = clock
        self.seed = seed
        self.tick_ms = max(1, round(tick_interval_s * 1000))
        self.anchor_ms = anchor_ms
        self._sleep = sleep
        table = {**SIM_ASSETS, **(assets or {})}
        missing = [s for s in self.symbols if s not in table]
        if missing:
            raise MarketError(f"sim provider {name!r} has no starting price for {', '.join(missing)}")
        self.assets = {s: table[s] for s in self.symbols}
        per_step = math.sqrt(self.tick_ms / _DAY_MS)
        self._sigma = {s: a.volatility * volatility_scale * per_step for s, a in self.assets.items()}
        self._walks = {s: _Walk(seed, s) for s in self.symbols}
        self._closed = asyncio.Event()

    # ------------------------------------------------------------------ the path
    def step(self, ts_ms: int) -> int:
        return (ts_ms - self.anchor_ms) // self.tick_ms

    def step_time(self, k: int) -> int:
        return self.anchor_ms + k * self.tick_ms

    def price_at(self, symbol: str, ts_ms: int) -> float:
        """The price in force at ``ts_ms`` (that of the step it falls in)."""
        a = self._asset(symbol)
        raw = a.price * math.exp(self._sigma[symbol] * self._walks[symbol].at(self.step(ts_ms)))
        return float(round_prices(np.array([raw]), a.sz_decimals)[0])

    def mids_at(self, ts_ms: int) -> Mids:
        k = self.step(ts_ms)
        t = self.step_time(k)
        return Mids(t, {s: self.price_at(s, t) for s in self.symbols})

    def _asset(self, symbol: str) -> SimAsset:
        try:
            return self.assets[symbol]
        except KeyError:
            raise MarketError(f"sim provider {self.name!r} does not serve {symbol!r}") from None

    def _hourly(self, symbol: str, hour: int, what: int) -> float:
        ss = np.random.SeedSequence([self.seed, _symbol_key(symbol), 3, what, _zigzag(hour)])
        return float(np.random.default_rng(ss).standard_normal())

    def context_at(self, symbol: str, ts_ms: int) -> AssetContext:
        a = self._asset(symbol)
        hour = ts_ms // _HOUR_MS
        mark = self.price_at(symbol, ts_ms)
        premium = round(0.0002 * self._hourly(symbol, hour, 1), 10)
        funding = round(a.funding * (1 + 0.8 * self._hourly(symbol, hour, 0)), 10)
        oi_usd = a.open_interest_usd * math.exp(0.05 * self._hourly(symbol, hour, 2))
        vlm_usd = a.day_volume_usd * math.exp(0.15 * self._hourly(symbol, hour, 3))
        return AssetContext(
            funding=funding, open_interest=round(oi_usd / mark, a.sz_decimals), mark_px=mark, mid_px=mark,
            oracle_px=self._round(mark * (1 - premium), a),
            prev_day_px=self.price_at(symbol, ts_ms - _DAY_MS), day_ntl_vlm=round(vlm_usd, 2), premium=premium,
            impact_pxs=(self._round(mark * 0.9999, a), self._round(mark * 1.0001, a)),
            day_base_vlm=round(vlm_usd / mark, a.sz_decimals),
        )

    @staticmethod
    def _round(px: float, a: SimAsset) -> float:
        return float(round_prices(np.array([px]), a.sz_decimals)[0])

    def snapshot_at(self, ts_ms: int) -> MarketSnapshot:
        assets = {s: AssetInfo(name=s, sz_decimals=a.sz_decimals, max_leverage=a.max_leverage)
                  for s, a in self.assets.items()}
        return MarketSnapshot(ts_ms, assets, {s: self.context_at(s, ts_ms) for s in self.symbols})

    def candles_between(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]:
        a = self._asset(symbol)
        iv = interval_ms(interval)
        start_ms, end_ms = start_ms // iv * iv, end_ms
        if end_ms <= start_ms:
            return []
        k0, k1 = self.step(start_ms), self.step(end_ms - 1) + 1
        stride = max(1, -(-(k1 - k0) // _MAX_CANDLE_POINTS))
        walk = self._walks[symbol].span(k0, k1, stride)
        times = self.anchor_ms + np.arange(k0, k1, stride, dtype=np.int64) * self.tick_ms
        keep = times >= start_ms
        prices = a.price * np.exp(self._sigma[symbol] * walk[keep])
        volume = a.day_volume_usd / a.price * (self.tick_ms * stride / _DAY_MS)
        out = aggregate(symbol, interval, times[keep], prices, np.full(prices.size, volume))
        # rounding is monotonic: rounding the extremes is the extreme of the rounded path
        return [replace(c, o=self._round(c.o, a), h=self._round(c.h, a), l=self._round(c.l, a), c=self._round(c.c, a),
                        v=round(c.v, a.sz_decimals)) for c in out]

    # ------------------------------------------------------------------ MarketProvider
    async def start(self) -> None:
        self._closed.clear()

    async def close(self) -> None:
        self._closed.set()

    async def mids(self) -> Mids:
        return self.mids_at(self.clock.now_ms())

    async def snapshot(self) -> MarketSnapshot:
        return self.snapshot_at(self.clock.now_ms())

    async def candles(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]:
        # never past the present: the path exists there, but no venue would show it
        return self.candles_between(symbol, interval, start_ms, min(end_ms, self.clock.now_ms() + 1))

    async def stream(self) -> AsyncIterator[Mids]:
        """One ``Mids`` per step, at the step's start time; a clock that jumped several steps yields the
        step it landed in (the steps in between are not replayed)."""
        last = None
        while not self._closed.is_set():
            now = self.clock.now_ms()
            k = self.step(now)
            if k != last:
                last = k
                yield self.mids_at(now)
                continue
            await self._sleep((self.step_time(k + 1) - now) / 1000)
