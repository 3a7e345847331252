"""Exchange providers from etc/exchange.yaml (engine.md "Exchange providers"): one :class:`Exchange` per
configured entry, keyed by its name (what a trader's ``exchange_provider`` names in manager.yaml).

Nothing connects here: ``start()`` does (the Hyperliquid client reads ``meta``, the sim subscribes to
the markets and loads its traders' accounts).
"""

from __future__ import annotations

from typing import Any

from nof0.config import ConfigError
from nof0.engine.exchange.hyperliquid.client import HyperliquidExchange
from nof0.engine.exchange.provider import Exchange, ExchangeError
from nof0.engine.exchange.sim.exchange import SimExchange
from nof0.engine.market.state import MarketState
from nof0.runtime import Runtime

__all__ = ["build_exchanges"]


def build_exchanges(rt: Runtime, markets: dict[str, MarketState], *, ingest: Any | None = None) -> dict[str, Exchange]:
    """``markets``: the market states by market provider name (the sim reads marks and metadata from the
    one its trader's ``market_provider`` names). ``ingest``: the process's ``IngestService``, so the
    sim's writes reach the same ``on_committed`` listeners as the feed's."""
    config = rt.config
    out: dict[str, Exchange] = {}
    for name, settings in config.exchange.providers.items():
        if settings.type == "sim":
            out[name] = SimExchange(rt, name, settings, markets, ingest=ingest)
        else:
            try:
                out[name] = HyperliquidExchange(rt, name, settings, markets)
            except ExchangeError as exc:
                raise ConfigError(config.path.parent / config.root.files.exchange, f"providers.{name}.private_key",
                                  str(exc).split(": ", 1)[-1]) from None
    return out
