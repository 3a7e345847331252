"""Referential integrity in ingest (design 2.1: "integrity validated in ingest"): an event about a
model or symbol nobody registered is rejected, and so is a trader state naming a provider that
``exchange.yaml`` / ``market.yaml`` do not define.

Known names are cached per service; a name missing from the cache is looked up in Postgres once per
batch, so another process's registrations are seen.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Iterable

from psycopg import AsyncConnection

from nof0.config import Config
from nof0.kernel.decode import Rejection
from nof0.kernel.events import MarketMeta, ModelEvent, SymbolEvent, TraderState
from nof0.market.repository import list_known_symbols
from nof0.traders.repository import list_known_models

__all__ = ["References", "group_by_type"]

# event type -> (field, kind) pairs it references
_REFERENCES: dict[str, tuple[tuple[str, str], ...]] = {
    "price_tick": (("symbol", "symbol"),),
    "fill": (("model_id", "model"), ("symbol", "symbol")),
    "trade": (("model_id", "model"), ("symbol", "symbol")),
    "position": (("model_id", "model"), ("symbol", "symbol")),
    "equity_snapshot": (("model_id", "model"),),
    "conversation_message": (("model_id", "model"),),
    "decision_cycle": (("model_id", "model"),),
    "llm_call": (("trader_id", "model"),),
    "trader_state": (("trader_id", "model"),),
    "sim_order": (("trader_id", "model"), ("symbol", "symbol")),
    "sim_balance": (("trader_id", "model"),),
}
_ADVICE = {
    "model": "unknown model; register it first with a model event (or `nof0 traders sync`)",
    "symbol": "unknown symbol; register it first with a symbol or market_meta event",
}


_REGISTERING = (ModelEvent, SymbolEvent, MarketMeta)


def group_by_type(events: Iterable[Any]) -> dict[type, list[Any]]:
    """Events by their type, each list in arrival order (a feed's batch is one type: no loop)."""
    events = list(events)
    types = set(map(type, events))
    if len(types) <= 1:
        return {types.pop(): events} if types else {}
    groups: dict[type, list[Any]] = {cls: [] for cls in types}
    for ev in events:
        groups[type(ev)].append(ev)
    return groups


def _registers(ev: Any) -> Iterable[tuple[str, str]]:
    if isinstance(ev, ModelEvent):
        yield "model", ev.id
    elif isinstance(ev, SymbolEvent):
        yield "symbol", ev.symbol
    elif isinstance(ev, MarketMeta):
        for entry in ev.meta_and_asset_ctxs[0].universe:
            yield "symbol", entry.name


class References:
    def __init__(self, config: Config) -> None:
        self._known: dict[str, set[str]] = {"model": set(), "symbol": set()}
        self._exchanges = set(config.exchange.providers)
        self._markets = set(config.market.providers)

    async def check(self, conn: AsyncConnection, items: list[Any]) -> tuple[list[Any], list[Rejection], dict[str, set[str]]]:
        """Split a batch's entries (``nof0.ingest.service.Entry``), in arrival order, into those whose
        references resolve and rejections. Also returns the names this batch registers (cache them once
        committed)."""
        wanted: dict[str, set[str]] = {"model": set(), "symbol": set()}
        groups = group_by_type(entry.event for entry in items)
        for cls, events in groups.items():  # whole columns at a time: a batch names a few ids many times
            for name, kind in _REFERENCES.get(cls.__struct_config__.tag, ()):
                wanted[kind].update(set(map(attrgetter(name), events)) - self._known[kind])
        known = {kind: set(self._known[kind]) for kind in wanted}
        if wanted["model"]:
            found = await list_known_models(conn, sorted(wanted["model"]))
            self._known["model"] |= found
            known["model"] |= found
        if wanted["symbol"]:
            found = await list_known_symbols(conn, sorted(wanted["symbol"]))
            self._known["symbol"] |= found
            known["symbol"] |= found
        registered: dict[str, set[str]] = {"model": set(), "symbol": set()}
        if TraderState not in groups and all(wanted[kind] <= known[kind] for kind in wanted):
            # every name resolves before the batch's own registrations: none is refused, order is moot
            for cls in groups.keys() & set(_REGISTERING):
                for ev in groups[cls]:
                    for kind, name in _registers(ev):
                        registered[kind].add(name)
            return items, [], registered
        ok, rejected = [], []
        for entry in items:
            ev = entry.event
            tag = ev.__struct_config__.tag
            problem = self._problem(ev, tag, known)
            if problem:
                field, value, reason = problem
                rejected.append(Rejection(entry.line, tag, field, value, reason, entry.text(), where=entry.where))
                continue
            for kind, name in _registers(ev):
                known[kind].add(name)
                registered[kind].add(name)
            ok.append(entry)
        return ok, rejected, registered

    def _problem(self, ev: Any, tag: str, known: dict[str, set[str]]) -> tuple[str, str, str] | None:
        for name, kind in _REFERENCES.get(tag, ()):
            if (value := getattr(ev, name)) not in known[kind]:
                return name, value, _ADVICE[kind]
        if isinstance(ev, TraderState):
            if ev.exchange_provider not in self._exchanges:
                return "exchange_provider", ev.exchange_provider, (
                    f"trader {ev.trader_id!r} names an unknown exchange provider"
                    f" (exchange.yaml defines: {', '.join(sorted(self._exchanges)) or 'none'})")
            if ev.market_provider not in self._markets:
                return "market_provider", ev.market_provider, (
                    f"trader {ev.trader_id!r} names an unknown market provider"
                    f" (market.yaml defines: {', '.join(sorted(self._markets)) or 'none'})")
        return None

    def remember(self, registered: dict[str, set[str]]) -> None:
        for kind, names in registered.items():
            self._known[kind] |= names
