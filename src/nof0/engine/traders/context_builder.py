"""Builds a cycle's :class:`DecisionContext` (engine.md "Executor": "builds the context from the store
... and the market provider"): positions and their exit plans from Postgres (``trades.repository``),
the account from the trader's exchange, marks, asset metadata, funding and open interest from the
market state, candles from the market provider.

Candles and their indicators are cached per (provider, symbol, interval) for one candle period: every
trader on a provider shares one fetch and one computation per period. A symbol's view is shared too:
the traders of one tick get the same ``SymbolView`` object while its price, asset metadata, context
and candles stay the same (so the prompt's market block is rendered once: ``prompts.market_block``).
The positions of every cycle building its context at the same moment are one query (``grouped``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nof0.config import ExecutorConfig, TraderConfig
from nof0.engine.exchange.provider import Exchange
from nof0.engine.market.provider import Candle, MarketError
from nof0.engine.market.state import MarketState
from nof0.engine.traders.context import (
    AccountView, DecisionContext, Indicators, Limits, PositionView, SymbolView, indicators_from_candles,
)
from nof0.engine.traders.grouped import GroupCall
from nof0.engine.traders.guards import leverage_caps
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime
from nof0.trades import repository as trades_repo

__all__ = ["ContextBuilder", "CandleSource", "INTERVAL_MS", "limits_for"]

log = get_logger("nof0.engine.context")

CandleSource = Callable[[str, str, int, int], Awaitable[list[Candle]]]
_M, _H = 60_000, 3_600_000
INTERVAL_MS = {"1m": _M, "3m": 3 * _M, "5m": 5 * _M, "15m": 15 * _M, "30m": 30 * _M, "1h": _H, "2h": 2 * _H,
               "4h": 4 * _H, "8h": 8 * _H, "12h": 12 * _H, "1d": 24 * _H}


def limits_for(trader: TraderConfig, executor: ExecutorConfig, market: MarketState) -> Limits:
    """The trader's limits as they apply with the market's current asset metadata."""
    rp = trader.risk_params
    allowed = tuple(trader.allowed_symbols or executor.allowed_symbols)
    assets = {s: (a.max_leverage if (a := market.asset(s)) else None) for s in allowed}
    return Limits(
        max_positions=rp.max_positions, max_position_size_usd=rp.max_position_size_usd,
        max_margin_usage_pct=rp.max_margin_usage_pct, min_risk_reward_ratio=rp.min_risk_reward_ratio,
        min_confidence=rp.min_confidence, min_liquidity_usd=rp.min_liquidity_usd,
        stop_loss_enabled=rp.stop_loss_enabled, take_profit_enabled=rp.take_profit_enabled, allowed_symbols=allowed,
        leverage_caps=leverage_caps(allowed, rp.major_coin_leverage, rp.altcoin_leverage, assets),
    )


@dataclass
class _Series:
    bucket: int
    candles: list[Candle]
    indicators: Indicators


class ContextBuilder:
    def __init__(self, rt: Runtime, executor: ExecutorConfig, candles: dict[str, CandleSource]) -> None:
        self.rt = rt
        self.executor = executor
        self.candles = candles  # market provider name -> candle source
        self._series: dict[tuple[str, str, str], _Series] = {}
        self._positions = GroupCall(self._read_positions)
        self._views: dict[tuple[str, str], tuple[tuple, SymbolView]] = {}

    async def _read_positions(self, trader_ids: list[str]) -> list[list[dict]]:
        async with self.rt.pool.connection() as conn, conn.transaction():
            rows = await trades_repo.list_open_positions(conn, sorted(set(trader_ids)))
        by_trader: dict[str, list[dict]] = {}
        for r in rows:
            by_trader.setdefault(r["model_id"], []).append(r)
        return [by_trader.get(t, []) for t in trader_ids]

    async def _series_for(self, provider: str, symbol: str, interval: str, now_ms: int) -> _Series:
        iv = INTERVAL_MS[interval]
        bucket = now_ms // iv
        key = (provider, symbol, interval)
        cached = self._series.get(key)
        if cached is not None and cached.bucket == bucket:
            return cached
        source = self.candles.get(provider)
        got: list[Candle] = []
        if source is not None:
            try:
                got = await source(symbol, interval, now_ms - self.executor.candle_lookback * iv, now_ms)
            except MarketError as exc:
                log.warning("candles unavailable", provider=provider, symbol=symbol, interval=interval, error=str(exc))
                got = cached.candles if cached else []
        series = _Series(bucket, got, indicators_from_candles(interval, got))
        self._series[key] = series
        return series

    async def symbol_view(self, market: MarketState, symbol: str, now_ms: int) -> SymbolView | None:
        price = market.mark(symbol)
        if not price:
            return None
        intraday = await self._series_for(market.provider, symbol, self.executor.intraday_interval, now_ms)
        longterm = await self._series_for(market.provider, symbol, self.executor.longterm_interval, now_ms)
        ctx = market.context(symbol)
        asset = market.asset(symbol)
        stamp = (now_ms, price, ctx, asset, intraday, longterm)
        key = (market.provider, symbol)
        cached = self._views.get(key)
        if cached is not None and len(cached[0]) == len(stamp) and all(a is b or a == b for a, b in zip(cached[0], stamp)):
            return cached[1]
        view = SymbolView(
            symbol=symbol, price=price, intraday=intraday.indicators, longterm=longterm.indicators,
            change_1h_pct=_change(price, now_ms - _H, intraday.candles, longterm.candles),
            change_4h_pct=_change(price, now_ms - 4 * _H, intraday.candles, longterm.candles),
            funding=ctx.funding if ctx else None, open_interest=ctx.open_interest if ctx else None,
            max_leverage=asset.max_leverage if asset else None, sz_decimals=asset.sz_decimals if asset else None,
        )
        self._views[key] = (stamp, view)
        return view

    async def build(self, trader: TraderConfig, exchange: Exchange, market: MarketState, limits: Limits, *,
                    cycle_number: int, now_ms: int, started_ms: int, cooldowns: dict[str, int],
                    invocations: int) -> DecisionContext:
        account = await exchange.account(trader.id)
        rows = await self._positions(trader.id)
        positions: dict[str, PositionView] = {}
        for r in rows:
            mark = market.mark(r["symbol"]) or r.get("mark") or r["entry_price"]
            sign = 1 if r["side"] == "long" else -1
            lev = r["leverage"] or 1.0
            positions[r["symbol"]] = PositionView(
                symbol=r["symbol"], side=r["side"], quantity=r["quantity"], entry_price=r["entry_price"], mark=mark,
                leverage=lev, unrealized_pnl=(mark - r["entry_price"]) * r["quantity"] * sign,
                margin_usd=r["quantity"] * r["entry_price"] / lev, entry_ms=r["entry_ts_ms"],
                confidence=r.get("confidence"), exit_plan=dict(r.get("exit_plan") or {}))
        symbols: dict[str, SymbolView] = {}
        for symbol in limits.allowed_symbols:
            view = await self.symbol_view(market, symbol, now_ms)
            if view is not None:
                symbols[symbol] = view
        return DecisionContext(
            trader_id=trader.id, cycle_number=cycle_number, now_ms=now_ms, started_ms=started_ms,
            account=AccountView(account.equity_usd, account.available_usd, account.margin_used_usd,
                                trader.starting_capital_usd),
            positions=positions, symbols=symbols, limits=limits,
            cooldowns={s: t for s, t in cooldowns.items() if t > now_ms}, invocations=invocations,
        )


def _change(price: float, at_ms: int, *series: list[Candle]) -> float | None:
    """Percent change from the close of the last candle that ended by ``at_ms`` (finest series first)."""
    for candles in series:
        if candles and candles[0].t <= at_ms:
            before = [c for c in candles if c.T <= at_ms]
            if before and before[-1].c:
                return (price / before[-1].c - 1) * 100
    return None
