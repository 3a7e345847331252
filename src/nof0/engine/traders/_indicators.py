"""Stand-in for ``nof0.engine.market.indicators`` until the market engine's module is on main: the
same signatures (``ema(values, n)``, ``macd(values, fast, slow, signal)``, ``rsi(values, n)``,
``atr(high, low, close, n)``), plain Python, each returning the whole series (``None`` while the
indicator warms up). ``context`` prefers the market engine's module when it is importable.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ema", "macd", "rsi", "atr"]


def ema(values: Sequence[float], n: int) -> list[float | None]:
    """Exponential moving average, seeded with the simple mean of the first ``n`` values."""
    out: list[float | None] = [None] * len(values)
    if n <= 0 or len(values) < n:
        return out
    k = 2.0 / (n + 1)
    current = sum(values[:n]) / n
    out[n - 1] = current
    for i in range(n, len(values)):
        current = values[i] * k + current * (1 - k)
        out[i] = current
    return out


def macd(values: Sequence[float], fast: int = 12, slow: int = 26, signal: int = 9
         ) -> tuple[list[float | None], list[float | None], list[float | None]]:
    """(MACD line, signal line, histogram)."""
    f, s = ema(values, fast), ema(values, slow)
    line: list[float | None] = [a - b if a is not None and b is not None else None for a, b in zip(f, s)]
    start = next((i for i, v in enumerate(line) if v is not None), len(line))
    sig_tail = ema([v for v in line[start:] if v is not None], signal)
    sig: list[float | None] = [None] * start + sig_tail
    hist = [a - b if a is not None and b is not None else None for a, b in zip(line, sig)]
    return line, sig, hist


def rsi(values: Sequence[float], n: int = 14) -> list[float | None]:
    """Wilder's relative strength index (0-100)."""
    out: list[float | None] = [None] * len(values)
    if n <= 0 or len(values) <= n:
        return out
    gains = losses = 0.0
    for i in range(1, n + 1):
        d = values[i] - values[i - 1]
        gains += max(d, 0.0)
        losses += max(-d, 0.0)
    avg_gain, avg_loss = gains / n, losses / n
    out[n] = _rsi(avg_gain, avg_loss)
    for i in range(n + 1, len(values)):
        d = values[i] - values[i - 1]
        avg_gain = (avg_gain * (n - 1) + max(d, 0.0)) / n
        avg_loss = (avg_loss * (n - 1) + max(-d, 0.0)) / n
        out[i] = _rsi(avg_gain, avg_loss)
    return out


def _rsi(gain: float, loss: float) -> float:
    if loss == 0:
        return 100.0 if gain > 0 else 50.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


def atr(high: Sequence[float], low: Sequence[float], close: Sequence[float], n: int = 14) -> list[float | None]:
    """Wilder's average true range."""
    size = len(close)
    out: list[float | None] = [None] * size
    if n <= 0 or size < n + 1:
        return out
    tr = [high[0] - low[0]] + [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1])) for i in range(1, size)
    ]
    current = sum(tr[1 : n + 1]) / n
    out[n] = current
    for i in range(n + 1, size):
        current = (current * (n - 1) + tr[i]) / n
        out[i] = current
    return out
