"""Market providers built from ``market.yaml`` (``rt.config.market.providers``), each with the runtime's
clock and metrics."""

from __future__ import annotations

import asyncio
from dataclasses import fields

from nof0.config import ConfigError, MarketProvider as ProviderConfig
from nof0.engine.market.hyperliquid.provider import HyperliquidMarket
from nof0.engine.market.provider import MarketError, MarketProvider
from nof0.engine.market.replay import ReplayMarket
from nof0.engine.market.sim import SimAsset, SimMarket
from nof0.engine.market.timing import Sleep
from nof0.runtime import Runtime

__all__ = ["build_market_provider", "provider_config"]


def provider_config(rt: Runtime, name: str) -> ProviderConfig:
    providers = rt.config.market.providers
    if name not in providers:
        raise ConfigError(_market_file(rt), "providers", f"no market provider named {name!r}"
                          f" (known: {', '.join(sorted(providers)) or 'none'})")
    return providers[name]


def _market_file(rt: Runtime) -> str:
    return str(rt.config.path.parent / rt.config.root.files.market)


def build_market_provider(rt: Runtime, name: str, *, sleep: Sleep = asyncio.sleep) -> MarketProvider:
    cfg = provider_config(rt, name)
    if cfg.type == "hyperliquid":
        return HyperliquidMarket(
            name, base_url=cfg.base_url, symbols=cfg.symbols, clock=rt.clock, metrics=rt.metrics,
            timeout_s=cfg.timeout, max_retries=cfg.max_retries, user_agent=cfg.http_user_agent,
            ping_interval_s=cfg.ws_ping_interval, pong_timeout_s=cfg.ws_pong_timeout,
            reconnect_min_s=cfg.reconnect_min, reconnect_max_s=cfg.reconnect_max, candle_intervals=cfg.ws_candles,
            trades=cfg.ws_trades, sleep=sleep,
        )
    if cfg.type == "sim":
        assets = {s: SimAsset(**{f.name: getattr(a, f.name) for f in fields(SimAsset)}) for s, a in cfg.assets.items()}
        try:
            return SimMarket(name, cfg.symbols, clock=rt.clock, seed=cfg.seed, tick_interval_s=cfg.tick_interval,
                             anchor_ms=cfg.anchor, volatility_scale=cfg.volatility_scale,
                             assets=assets, sleep=sleep)
        except MarketError as exc:
            raise ConfigError(_market_file(rt), f"providers.{name}.assets", f"{exc}: give it assets.<SYMBOL>.price"
                              ) from None
    return ReplayMarket(
        name, pool=rt.pool, source=cfg.source, symbols=cfg.symbols, start_ms=cfg.start,
        end_ms=cfg.end, speed=cfg.speed, clock=rt.clock, meta_provider=cfg.meta_provider or None,
        loop=cfg.loop, sleep=sleep,
    )
