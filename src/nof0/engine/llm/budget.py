"""A trader's daily model budget (etc/manager.yaml ``daily_budget_usd`` / ``daily_budget_tokens``):
what its calls used since 00:00 UTC of the injected clock's day, summed from ``llm_calls``, so a
restart forgets nothing that was recorded."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from nof0.config import TraderConfig
from nof0.llm_calls import repository as repo

__all__ = ["DAY_MS", "day_start_ms", "BudgetStatus", "budget_status"]

DAY_MS = 86_400_000


def day_start_ms(now_ms: int) -> int:
    return now_ms - now_ms % DAY_MS


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    tokens: int
    cost_usd: float
    exhausted: str | None  # why no more calls today, or None

    def as_dict(self) -> dict:
        return {"tokens_today": self.tokens, "cost_usd_today": round(self.cost_usd, 6), "exhausted": self.exhausted}


async def budget_status(pool: AsyncConnectionPool, trader: TraderConfig, now_ms: int) -> BudgetStatus:
    async with pool.connection() as conn, conn.transaction():
        used = await repo.get_usage_since(conn, trader.id, day_start_ms(now_ms))
    why = None
    if trader.daily_budget_usd and used["cost_usd"] >= trader.daily_budget_usd:
        why = f"daily budget spent: {used['cost_usd']:.4f} of {trader.daily_budget_usd:g} USD"
    elif trader.daily_budget_tokens and used["tokens"] >= trader.daily_budget_tokens:
        why = f"daily budget spent: {used['tokens']} of {trader.daily_budget_tokens} tokens"
    return BudgetStatus(used["tokens"], used["cost_usd"], why)
