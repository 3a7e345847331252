"""Where a trader's reply comes from: an LLM through the gateway client, or a built-in strategy.

Both answer the same decision contract as text; the executor parses either the same way. A strategy
makes no model call, so it leaves no ``llm_calls`` row and spends no budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from psycopg_pool import AsyncConnectionPool

from nof0.config import TraderConfig
from nof0.engine.llm.budget import budget_status
from nof0.engine.llm.client import Completion, LLMClient
from nof0.engine.strategies import PREFIX, Strategy, strategy_for
from nof0.engine.traders.context import DecisionContext

__all__ = ["DecisionModel", "LLMModel", "StrategyModel", "model_for"]


class DecisionModel(Protocol):
    name: str
    is_llm: bool

    async def unavailable_reason(self, now_ms: int) -> str | None: ...

    async def reply(self, system: str, user: str, ctx: DecisionContext) -> Completion: ...


@dataclass
class StrategyModel:
    name: str
    strategy: Strategy
    is_llm: bool = False

    async def unavailable_reason(self, now_ms: int) -> str | None:
        return None

    async def reply(self, system: str, user: str, ctx: DecisionContext) -> Completion:
        return Completion(text=self.strategy.decide(ctx), finish_reason="stop")


@dataclass
class LLMModel:
    name: str
    client: LLMClient
    trader: TraderConfig
    pool: AsyncConnectionPool
    is_llm: bool = True

    async def unavailable_reason(self, now_ms: int) -> str | None:
        why = self.client.unavailable_reason(self.name)
        if why is None and (self.trader.daily_budget_usd or self.trader.daily_budget_tokens):
            why = (await budget_status(self.pool, self.trader, now_ms)).exhausted
        return why

    async def reply(self, system: str, user: str, ctx: DecisionContext) -> Completion:
        return await self.client.complete(self.name, system, user)


def model_for(trader: TraderConfig, default_model: str, client: LLMClient, pool: AsyncConnectionPool) -> DecisionModel:
    """The trader's model; :class:`nof0.engine.strategies.StrategyError` names a wrong strategy."""
    name = trader.model or default_model
    if name.startswith(PREFIX):
        return StrategyModel(name, strategy_for(name, trader.strategy_params))
    return LLMModel(name, client, trader, pool)
