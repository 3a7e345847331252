"""nof1 shapes of prices (``/api/crypto-prices``)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

__all__ = ["crypto_price", "crypto_prices_map"]


def crypto_price(symbol: str, price: float, ts_ms: int) -> dict[str, Any]:
    return {"symbol": symbol, "price": price, "timestamp": ts_ms}


def crypto_prices_map(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``price_latest`` rows (symbol, price, ts_ms) -> the ``prices`` object of the endpoint."""
    return {r["symbol"]: crypto_price(r["symbol"], r["price"], r["ts_ms"]) for r in rows}
