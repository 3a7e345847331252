"""Built-in strategies (engine.md "LLM client": "a deterministic rule-based strategy answering the
same decision contract"): a trader whose ``model`` is ``strategy:NAME`` gets its reply from one of
these instead of a gateway, so the arena runs offline. They are strategies, not LLMs, and are named
so in every record (``strategy:momentum``)."""

from __future__ import annotations

from nof0.engine.strategies.base import Strategy, StrategyError
from nof0.engine.strategies.mean_reversion import MeanReversion
from nof0.engine.strategies.momentum import Momentum

__all__ = ["STRATEGIES", "Strategy", "StrategyError", "PREFIX", "strategy_for"]

PREFIX = "strategy:"
STRATEGIES: dict[str, type[Strategy]] = {"momentum": Momentum, "mean_reversion": MeanReversion}


def strategy_for(model: str, params: dict | None = None) -> Strategy:
    """The strategy a ``strategy:NAME`` model names; :class:`StrategyError` for an unknown one."""
    name = model[len(PREFIX):] if model.startswith(PREFIX) else model
    cls = STRATEGIES.get(name)
    if cls is None:
        raise StrategyError(f"unknown strategy {model!r} (built in: {', '.join(PREFIX + n for n in STRATEGIES)})")
    return cls(params or {})
