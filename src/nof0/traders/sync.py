"""``nof0 traders sync``: the traders of ``etc/manager.yaml`` become ``models`` rows (display name,
``trader_config``, starting capital) and ``trader_state`` rows (providers, allocation, risk guards with
the cooldown lengths; never the running cooldowns or pauses), through the ingestion service like any other
producer (design 2.1: trader ids are models). This module makes the events; ``nof0.ingest.traders_sync``
(above the domains) writes them.

Provider references are checked twice: when the configuration loads (``config.py``) and by ingest
(a ``trader_state`` naming an unknown provider is rejected with the trader and the provider named).
"""

from __future__ import annotations

from typing import Any

import msgspec

from nof0.config import Config
from nof0.kernel.events import ModelEvent, TraderState

__all__ = ["trader_events", "risk_guards"]


def _plain(obj: Any) -> Any:
    # configuration durations are floats (seconds) of a subclass msgspec does not encode by itself
    return msgspec.to_builtins(obj, enc_hook=lambda value: float(value) if isinstance(value, float) else value)


def risk_guards(trader: Any, **extra: Any) -> dict[str, Any]:
    """``trader_state.risk_guards``: the trader's risk parameters and cooldown lengths as configured, plus
    what the manager adds (the leverage caps in force, the last reconciliation). The ``cooldown`` column
    holds the running cooldowns, which only the manager writes: a sync never resets them, nor a pause."""
    return {**_plain(trader.risk_params), "cooldown": dict(trader.cooldown), **extra}


def trader_events(config: Config) -> list[tuple[str, Any]]:
    """``(where, event)``: each trader's model event, then each trader's state, named by the trader's place
    in the manager file (``manager.yaml traders[0]``)."""
    where = [f"{config.root.files.manager} traders[{i}]" for i in range(len(config.manager.traders))]
    events: list[tuple[str, Any]] = []
    for at, trader in zip(where, config.manager.traders):
        events.append((at, ModelEvent(id=trader.id, display_name=trader.name,
                                      starting_capital_usd=trader.starting_capital_usd,
                                      trader_config=_plain(trader))))
    for at, trader in zip(where, config.manager.traders):
        events.append((at, TraderState(trader_id=trader.id, exchange_provider=trader.exchange_provider,
                                       market_provider=trader.market_provider, allocation_pct=trader.allocation_pct,
                                       risk_guards=risk_guards(trader))))
    return events
