"""Technical indicators for the executor's context (engine.md "Prompts"): EMA, MACD(12, 26, 9), RSI
(Wilder) and ATR (Wilder), vectorised with numpy.

Conventions (those of Wilder and of the usual charting references, so published values can be checked):

* ``ema(x, n)``: smoothing ``2 / (n + 1)``, seeded with the simple mean of the first ``n`` values; the
  first value is at index ``n - 1``.
* ``rsi(close, n)``: gains and losses of consecutive closes; the first average gain/loss is the simple
  mean of the first ``n`` changes (index ``n``), then Wilder's smoothing ``1 / n``. An average loss of 0
  gives 100 (and 50 when nothing moved at all).
* ``atr(high, low, close, n)``: true range ``max(h - l, |h - prev close|, |l - prev close|)``, the first
  bar's being ``h - l``; the first ATR is the mean of the first ``n`` true ranges (index ``n - 1``), then
  Wilder's smoothing.
* ``macd(close)``: ``ema(12) - ema(26)`` (from index 25), its signal ``ema(9)`` of the MACD line (from index
  33), the histogram their difference.

Every function returns an array as long as its input, NaN where the indicator is not defined yet. The
recursions ``y[t] = (1 - a) y[t-1] + a x[t]`` are evaluated in closed form, block by block (blocks short
enough that ``(1 - a) ** -len`` stays far inside the float range), instead of one Python step per value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nof0.engine.market.provider import Candle

__all__ = ["ema", "wilder", "macd", "rsi", "atr", "true_range", "Indicators", "latest_indicators"]


def _series(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must hold finite numbers only")
    return x


def _period(n: int) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"period must be an integer >= 1, got {n!r}")
    return int(n)


def _smooth(seed: float, x: np.ndarray, alpha: float) -> np.ndarray:
    """``y[i] = (1 - alpha) * y[i-1] + alpha * x[i]`` for every ``x[i]``, with ``y[-1] = seed``."""
    out = np.empty_like(x)
    b = 1.0 - alpha
    if b <= 0.0:
        out[:] = x
        return out
    block = max(1, int(300.0 / -math.log(b)))  # b ** -block <= e**300
    prev = seed
    for start in range(0, x.size, block):
        chunk = x[start:start + block]
        powers = b ** np.arange(1, chunk.size + 1, dtype=np.float64)
        out[start:start + chunk.size] = powers * (prev + alpha * np.cumsum(chunk / powers))
        prev = out[start + chunk.size - 1]
    return out


def _seeded(x: np.ndarray, n: int, alpha: float, first: int = 0) -> np.ndarray:
    """The smoothing seeded with the mean of ``x[first:first + n]`` (placed at ``first + n - 1``)."""
    out = np.full(x.size, np.nan)
    if x.size - first < n:
        return out
    seed_at = first + n - 1
    out[seed_at] = x[first:first + n].mean()
    out[seed_at + 1:] = _smooth(out[seed_at], x[seed_at + 1:], alpha)
    return out


def ema(values: Sequence[float] | np.ndarray, period: int) -> np.ndarray:
    n = _period(period)
    return _seeded(_series(values, "values"), n, 2.0 / (n + 1))


def wilder(values: Sequence[float] | np.ndarray, period: int) -> np.ndarray:
    """Wilder's moving average (``1 / n`` smoothing, seeded with the simple mean of the first ``n``)."""
    n = _period(period)
    return _seeded(_series(values, "values"), n, 1.0 / n)


def macd(close: Sequence[float] | np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(MACD line, signal line, histogram)."""
    c = _series(close, "close")
    fast, slow, signal = _period(fast), _period(slow), _period(signal)
    if fast >= slow:
        raise ValueError(f"the fast period ({fast}) must be shorter than the slow one ({slow})")
    line = ema(c, fast) - ema(c, slow)
    first = slow - 1
    sig = np.full(c.size, np.nan)
    if c.size > first:
        sig = _seeded(np.where(np.isnan(line), 0.0, line), signal, 2.0 / (signal + 1), first=first)
    return line, sig, line - sig


def rsi(close: Sequence[float] | np.ndarray, period: int = 14) -> np.ndarray:
    c = _series(close, "close")
    n = _period(period)
    out = np.full(c.size, np.nan)
    if c.size <= n:
        return out
    change = np.diff(c)
    avg_gain = _seeded(np.maximum(change, 0.0), n, 1.0 / n)
    avg_loss = _seeded(np.maximum(-change, 0.0), n, 1.0 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    value = np.where(avg_loss == 0.0, np.where(avg_gain == 0.0, 50.0, 100.0), value)
    out[1:] = np.where(np.isnan(avg_gain), np.nan, value)
    return out


def true_range(high: Sequence[float] | np.ndarray, low: Sequence[float] | np.ndarray,
               close: Sequence[float] | np.ndarray) -> np.ndarray:
    h, lo, c = _series(high, "high"), _series(low, "low"), _series(close, "close")
    if not (h.size == lo.size == c.size):
        raise ValueError(f"high, low and close must be as long ({h.size}, {lo.size}, {c.size})")
    tr = h - lo
    if h.size > 1:
        prev = c[:-1]
        tr[1:] = np.maximum.reduce([h[1:] - lo[1:], np.abs(h[1:] - prev), np.abs(lo[1:] - prev)])
    return tr


def atr(high: Sequence[float] | np.ndarray, low: Sequence[float] | np.ndarray,
        close: Sequence[float] | np.ndarray, period: int = 14) -> np.ndarray:
    n = _period(period)
    return _seeded(true_range(high, low, close), n, 1.0 / n)


@dataclass(frozen=True, slots=True)
class Indicators:
    """The latest value of each indicator the prompts show (None: not enough candles yet)."""

    close: float | None
    ema20: float | None
    ema50: float | None
    macd: float | None
    macd_signal: float | None
    macd_hist: float | None
    rsi7: float | None
    rsi14: float | None
    atr3: float | None
    atr14: float | None


def _last(x: np.ndarray) -> float | None:
    return None if x.size == 0 or np.isnan(x[-1]) else float(x[-1])


def latest_indicators(candles: Sequence[Candle]) -> Indicators:
    """The indicators of a candle series (oldest first), at its last candle."""
    c = np.array([k.c for k in candles], dtype=np.float64)
    h = np.array([k.h for k in candles], dtype=np.float64)
    lo = np.array([k.l for k in candles], dtype=np.float64)
    line, sig, hist = macd(c) if c.size else (c, c, c)
    return Indicators(
        close=_last(c), ema20=_last(ema(c, 20)), ema50=_last(ema(c, 50)), macd=_last(line),
        macd_signal=_last(sig), macd_hist=_last(hist), rsi7=_last(rsi(c, 7)), rsi14=_last(rsi(c, 14)),
        atr3=_last(atr(h, lo, c, 3)), atr14=_last(atr(h, lo, c, 14)),
    )
