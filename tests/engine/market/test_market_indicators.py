"""Indicators against straightforward loop implementations (written here, independently) and published
values (Wilder's RSI worked example as printed by StockCharts' ChartSchool)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from nof0.engine.market.indicators import atr, ema, latest_indicators, macd, rsi, true_range, wilder
from nof0.engine.market.provider import Candle

# StockCharts "Relative Strength Index (RSI)" example: closes and the 14-day RSI from the 15th close on
CLOSES = [44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826, 45.8931,
          46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439, 46.2122, 46.2521,
          45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672, 43.4205, 42.6628, 43.1314]
PUBLISHED_RSI14 = [70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99,
                   41.46, 41.87, 45.46, 37.30, 33.08, 37.77]


def loop_ema(x, n):
    out = [math.nan] * len(x)
    if len(x) < n:
        return out
    k = 2 / (n + 1)
    out[n - 1] = sum(x[:n]) / n
    for i in range(n, len(x)):
        out[i] = x[i] * k + out[i - 1] * (1 - k)
    return out


def loop_rsi(c, n):
    out = [math.nan] * len(c)
    if len(c) <= n:
        return out
    gains = [max(c[i] - c[i - 1], 0) for i in range(1, len(c))]
    losses = [max(c[i - 1] - c[i], 0) for i in range(1, len(c))]
    g, lo = sum(gains[:n]) / n, sum(losses[:n]) / n
    for i in range(n, len(c)):
        if i > n:
            g = (g * (n - 1) + gains[i - 1]) / n
            lo = (lo * (n - 1) + losses[i - 1]) / n
        out[i] = 100.0 if lo == 0 and g > 0 else 50.0 if lo == 0 else 100 - 100 / (1 + g / lo)
    return out


def loop_atr(h, lo, c, n):
    tr = [h[0] - lo[0]] + [max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(h))]
    out = [math.nan] * len(h)
    if len(h) < n:
        return out
    out[n - 1] = sum(tr[:n]) / n
    for i in range(n, len(h)):
        out[i] = (out[i - 1] * (n - 1) + tr[i]) / n
    return out


def walk(n, seed=1, start=100.0):
    rng = random.Random(seed)
    closes, highs, lows = [], [], []
    px = start
    for _ in range(n):
        px *= math.exp(rng.gauss(0, 0.02))
        closes.append(px)
        highs.append(px * (1 + abs(rng.gauss(0, 0.01))))
        lows.append(px * (1 - abs(rng.gauss(0, 0.01))))
    return closes, highs, lows


def same(a, b, rel=1e-9):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=rel, atol=1e-12)


def test_rsi_matches_wilders_published_example():
    got = rsi(CLOSES, 14)
    assert np.all(np.isnan(got[:14]))
    assert [round(v, 2) for v in got[14:]] == pytest.approx(PUBLISHED_RSI14, abs=0.006)


@pytest.mark.parametrize("n", [1, 2, 7, 12, 20, 26, 50, 200])
def test_ema_matches_the_loop(n):
    closes, _, _ = walk(5000, seed=n)
    same(ema(closes, n), loop_ema(closes, n))


@pytest.mark.parametrize("n", [7, 14])
def test_rsi_matches_the_loop_on_a_long_series(n):
    closes, _, _ = walk(20_000, seed=n)  # longer than one closed-form block
    same(rsi(closes, n), loop_rsi(closes, n), rel=1e-8)


@pytest.mark.parametrize("n", [3, 14])
def test_atr_matches_the_loop(n):
    closes, highs, lows = walk(3000, seed=3 + n)
    same(atr(highs, lows, closes, n), loop_atr(highs, lows, closes, n))


def test_macd_is_the_ema_difference_with_an_ema9_signal():
    closes, _, _ = walk(400, seed=9)
    line, signal, hist = macd(closes)
    fast, slow = loop_ema(closes, 12), loop_ema(closes, 26)
    ref_line = [f - s for f, s in zip(fast, slow)]
    same(line, ref_line)
    ref_signal = [math.nan] * 25 + loop_ema(ref_line[25:], 9)
    same(signal, ref_signal)
    same(hist, [a - b for a, b in zip(ref_line, ref_signal)])
    assert np.isnan(signal[32]) and not np.isnan(signal[33])


def test_short_and_flat_series():
    assert np.all(np.isnan(ema([1.0, 2.0], 3)))
    assert np.all(np.isnan(rsi([1.0] * 14, 14)))
    assert rsi([5.0] * 20, 14)[-1] == 50.0  # nothing moved
    assert rsi(list(range(1, 21)), 14)[-1] == 100.0  # only gains
    assert np.all(np.isnan(macd([1.0] * 30)[1]))
    assert wilder([2.0, 4.0, 6.0], 2).tolist()[1:] == [3.0, 4.5]
    assert true_range([3.0, 5.0], [1.0, 4.0], [2.0, 4.5]).tolist() == [2.0, 3.0]  # |5 - prev close 2|


def test_bad_input_is_refused_naming_it():
    with pytest.raises(ValueError, match="close must hold finite numbers"):
        rsi([1.0, float("nan"), 2.0], 2)
    with pytest.raises(ValueError, match="period must be an integer >= 1"):
        ema([1.0], 0)
    with pytest.raises(ValueError, match="as long"):
        atr([1.0, 2.0], [1.0], [1.0, 2.0], 1)


def test_latest_indicators_of_candles():
    closes, highs, lows = walk(120, seed=5)
    candles = [Candle(t=i, T=i + 1, symbol="BTC", interval="4h", o=c, h=h, l=lo, c=c, v=1.0)
               for i, (c, h, lo) in enumerate(zip(closes, highs, lows))]
    got = latest_indicators(candles)
    assert got.close == closes[-1]
    assert got.ema20 == pytest.approx(loop_ema(closes, 20)[-1])
    assert got.ema50 == pytest.approx(loop_ema(closes, 50)[-1])
    assert got.rsi7 == pytest.approx(loop_rsi(closes, 7)[-1])
    assert got.atr3 == pytest.approx(loop_atr(highs, lows, closes, 3)[-1])
    assert got.macd_hist == pytest.approx(got.macd - got.macd_signal)
    few = latest_indicators(candles[:10])
    assert few.ema20 is None and few.rsi7 is not None and few.macd is None
    assert latest_indicators([]).close is None
