"""A trader's live state in the manager (engine.md "Manager"), and its mirror in ``trader_state``:
pause window, cooldowns per symbol, allocation, last decision, and the cycle counter. Everything the
manager must remember across a restart is written through ``IngestService`` on every change and read
back at start (the cycle counter from ``decision_cycles``).

``trader_state.cooldown`` holds ``{"symbols": {"BTC": {"until_ms": ..., "reason": "after_loss"}},
"trades_seen_ms": ...}``: the running cooldowns and the exit time of the last trade already looked at
(a close found after a restart still starts its cooldown, and only once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from nof0.config import TraderConfig, parse_duration
from nof0.engine.exchange.provider import Exchange
from nof0.engine.market.state import MarketState
from nof0.engine.traders.context import Limits
from nof0.engine.traders.models import DecisionModel
from nof0.engine.traders.prompts import PromptTemplate
from nof0.kernel.events import TraderState
from nof0.timefmt import dt_to_s

__all__ = ["TraderRuntime", "ms_to_dt", "dt_to_ms", "FOREVER_MS"]

FOREVER_MS = 4_102_444_799_000  # "paused until resumed": the last second before 2100 (the event time bound)


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def dt_to_ms(dt: datetime | None) -> int | None:
    return None if dt is None else int(round(dt_to_s(dt) * 1000))


@dataclass
class TraderRuntime:
    config: TraderConfig
    exchange: Exchange
    market: MarketState
    model: DecisionModel | None
    template: PromptTemplate | None
    limits: Limits
    limits_assets: Any = None  # the asset metadata the limits were computed from
    next_cycle: int = 1
    invocations: int = 0
    started_ms: int = 0
    last_decision_ms: int | None = None
    pause_until_ms: int | None = None
    cooldowns: dict[str, dict[str, Any]] = field(default_factory=dict)
    trades_seen_ms: int = 0
    status: str = "starting"  # running | paused | unavailable | error
    reason: str | None = None
    last_lateness_ms: int = 0

    @property
    def id(self) -> str:
        return self.config.id

    def cooldown_ms(self, kind: str) -> int:
        value = self.config.cooldown.get(kind)
        return int(parse_duration(value) * 1000) if value is not None else 0

    def active_cooldowns(self, now_ms: int) -> dict[str, int]:
        return {s: c["until_ms"] for s, c in self.cooldowns.items() if c["until_ms"] > now_ms}

    def due_ms(self) -> int:
        if self.last_decision_ms is None:
            return 0
        return self.last_decision_ms + int(self.config.decision_interval * 1000)

    def load_cooldown(self, stored: dict | None) -> None:
        stored = stored or {}
        symbols = stored.get("symbols")
        if isinstance(symbols, dict):
            self.cooldowns = {s: {"until_ms": int(c["until_ms"]), "reason": str(c.get("reason", ""))}
                              for s, c in symbols.items() if isinstance(c, dict) and "until_ms" in c}
        self.trades_seen_ms = int(stored.get("trades_seen_ms") or 0)

    def cooldown_json(self) -> dict[str, Any]:
        return {"symbols": {s: dict(c) for s, c in sorted(self.cooldowns.items())}, "trades_seen_ms": self.trades_seen_ms}

    def state_event(self, **fields: Any) -> TraderState:
        """A ``trader_state`` event with the given columns (the others keep their stored values)."""
        return TraderState(trader_id=self.id, exchange_provider=self.config.exchange_provider,
                           market_provider=self.config.market_provider, **fields)
