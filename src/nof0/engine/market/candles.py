"""Candles from a price path: the sim provider's own path, the replay provider's stored ticks.

A candle covers ``[t, t + interval)`` in epoch milliseconds; its ``T`` is ``t + interval - 1`` like
Hyperliquid's. Empty intervals have no candle (the venue sends none either).
"""

from __future__ import annotations

import numpy as np

from nof0.engine.market.provider import Candle, MarketError

__all__ = ["INTERVAL_MS", "interval_ms", "aggregate"]

_MIN, _HOUR, _DAY = 60_000, 3_600_000, 86_400_000
# Hyperliquid's intervals, but "1M" (calendar months are not a fixed length)
INTERVAL_MS: dict[str, int] = {
    "1m": _MIN, "3m": 3 * _MIN, "5m": 5 * _MIN, "15m": 15 * _MIN, "30m": 30 * _MIN,
    "1h": _HOUR, "2h": 2 * _HOUR, "4h": 4 * _HOUR, "8h": 8 * _HOUR, "12h": 12 * _HOUR,
    "1d": _DAY, "3d": 3 * _DAY, "1w": 7 * _DAY,
}


def interval_ms(interval: str) -> int:
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise MarketError(f"unknown candle interval {interval!r} (known: {', '.join(INTERVAL_MS)})") from None


def aggregate(symbol: str, interval: str, times_ms: np.ndarray, prices: np.ndarray,
              volumes: np.ndarray | None = None) -> list[Candle]:
    """OHLC per interval of the points ``(times_ms[i], prices[i])`` (times ascending); ``v`` sums ``volumes``
    (0 without), ``n`` counts the points."""
    iv = interval_ms(interval)
    times = np.asarray(times_ms, dtype=np.int64)
    px = np.asarray(prices, dtype=np.float64)
    if times.size == 0:
        return []
    buckets = times // iv * iv
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], times.size] - 1
    highs = np.maximum.reduceat(px, starts)
    lows = np.minimum.reduceat(px, starts)
    vols = np.add.reduceat(np.asarray(volumes, dtype=np.float64), starts) if volumes is not None \
        else np.zeros(starts.size)
    return [
        Candle(t=int(buckets[s]), T=int(buckets[s]) + iv - 1, symbol=symbol, interval=interval, o=float(px[s]),
               h=float(h), l=float(lo), c=float(px[e]), v=float(v), n=int(e - s + 1))
        for s, e, h, lo, v in zip(starts, ends, highs, lows, vols)
    ]
