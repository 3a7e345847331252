"""The analytics job's inputs (design 2.4 Analytics, step 1: "hydrate metrics from trades + positions"):
rows read from Postgres, grouped per model and turned into the typed inputs of
:func:`nof0.analytics.metrics.compute_model_analytics`, the single computation.

* decisions: each element of ``decision_cycles.decisions`` is one signal (long, short, close, hold) with
  its confidence (0-1), leverage (default 1) and optional symbol; invocations are the cycles'
  ``executed_at``;
* minutes long, short and flat: for each symbol the model held or decided on, the position history
  (``entry..exit``, or ``now`` while open) over the span of its invocations, flat where no position;
* last conversation: the newest timed message of any of the model's threads.

Pure: no database, no clock (``now_s`` is passed in). ``docs/analytics.md`` documents every rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Iterable, Literal

import msgspec

from nof0.analytics.metrics import (
    ConvoRef, Decision, PositionInterval, TradeFacts, TradeStats, compute_model_analytics,
)
from nof0.timefmt import ms_to_s

__all__ = [
    "DecisionEntry",
    "ModelFacts",
    "parse_decisions",
    "position_intervals",
    "group_facts",
    "model_analytics",
]


class DecisionEntry(msgspec.Struct, kw_only=True):
    """One element of ``decision_cycles.decisions``; other keys (reasoning, exit plan...) are ignored."""

    signal: Literal["long", "short", "close", "hold"]
    # optional, as ingest accepts it: such a signal is counted but left out of confidence statistics
    confidence: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    leverage: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    symbol: str | None = None


_ENTRIES = msgspec.json.Decoder(list[DecisionEntry])
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_ENTRY = msgspec.json.Decoder(DecisionEntry)


def parse_decisions(
    model_id: str, cycle_number: int | None, executed_at_s: float, raw: str | bytes
) -> tuple[list[DecisionEntry], list[str]]:
    """The valid entries of one cycle, and one message per invalid entry naming the field and value.

    An invalid entry is left out (and reported) rather than failing the model's analytics: the
    decisions were stored by the engine, and one malformed signal must not hide all the others.
    """
    try:
        return _ENTRIES.decode(raw), []
    except msgspec.ValidationError:
        pass  # find which entries are wrong, keep the others
    where = f"model {model_id!r} cycle {cycle_number} at {executed_at_s}"
    try:
        elements = _RAW_LIST.decode(raw)
    except msgspec.DecodeError as exc:
        return [], [f"{where}: decisions is not a JSON array of objects ({exc}): {_clip(raw)}"]
    good: list[DecisionEntry] = []
    errors: list[str] = []
    for i, element in enumerate(elements):
        try:
            good.append(_ENTRY.decode(element))
        except msgspec.ValidationError as exc:
            errors.append(f"{where}: decisions[{i}]: {exc}: {_clip(bytes(element))}")
    return good, errors


def _clip(raw: str | bytes, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class ModelFacts:
    """Everything the analytics of one model are computed from."""

    model_id: str
    trades: list[TradeFacts] = field(default_factory=list)
    stats: TradeStats | None = None  # the trades' statistics computed by Postgres, instead of ``trades``
    decisions: list[Decision] = field(default_factory=list)
    invocations_s: list[float] = field(default_factory=list)
    symbols: set[str] = field(default_factory=set)  # held or decided on: the symbols whose minutes count
    positions: list[tuple[str, str, float, float | None]] = field(default_factory=list)  # symbol, side, s, s
    last_convo: ConvoRef | None = None
    invalid_decisions: list[str] = field(default_factory=list)


def position_intervals(
    positions: Iterable[tuple[str, str, float, float | None]],
    symbols: Iterable[str],
    start_s: float,
    end_s: float,
    now_s: float,
) -> list[PositionInterval]:
    """Cover ``[start_s, end_s]`` for each symbol with long, short and flat intervals.

    A position spans entry to exit (``now_s`` while open), clipped to the window. Overlapping
    positions of one symbol (a flip recorded at the same instant) are cut so no minute counts twice;
    the time between positions is flat. So the three totals add up to ``len(symbols) x window``.
    """
    if end_s <= start_s:
        return []
    by_symbol: dict[str, list[tuple[float, float, str]]] = {s: [] for s in symbols}
    for symbol, side, entry_s, exit_s in positions:
        lo, hi = max(entry_s, start_s), min(now_s if exit_s is None else exit_s, end_s)
        if hi > lo and symbol in by_symbol:
            by_symbol[symbol].append((lo, hi, side))
    out: list[PositionInterval] = []
    for symbol in sorted(by_symbol):
        cursor = start_s
        for lo, hi, side in sorted(by_symbol[symbol]):
            lo = max(lo, cursor)
            if hi <= lo:
                continue
            if lo > cursor:
                out.append(PositionInterval(symbol=symbol, state="flat", start_s=cursor, end_s=lo))
            out.append(PositionInterval(symbol=symbol, state=side, start_s=lo, end_s=hi))
            cursor = hi
        if cursor < end_s:
            out.append(PositionInterval(symbol=symbol, state="flat", start_s=cursor, end_s=end_s))
    return out


def group_facts(
    model_ids: Iterable[str],
    trades: Iterable[TradeFacts] | dict[str, TradeStats],
    cycles: Iterable[tuple[str, int | None, float, str]],
    positions: Iterable[tuple[str, str, str, int, int | None]],
    last_messages: Iterable[tuple[str, int]],
) -> dict[str, ModelFacts]:
    """Rows of the batch read (see ``analytics/repository.py``) -> one :class:`ModelFacts` per model."""
    facts = {m: ModelFacts(m) for m in model_ids}
    if isinstance(trades, dict):  # per model, from the database (``job._trade_stats``)
        for f in facts.values():
            f.stats = trades.get(f.model_id, TradeStats())
    else:
        for t in trades:
            facts[t.model_id].trades.append(t)
    for model_id, cycle_number, executed_at_s, raw in cycles:
        f = facts[model_id]
        f.invocations_s.append(executed_at_s)
        entries, errors = parse_decisions(model_id, cycle_number, executed_at_s, raw)
        f.invalid_decisions.extend(errors)
        for e in entries:
            # The decision is the model's own output, so its leverage is the one "asked for in the
            # conversation" as well (metrics counts convo leverage of entry signals only).
            f.decisions.append(Decision(
                signal=e.signal, confidence=e.confidence, leverage=e.leverage, timestamp_s=executed_at_s,
                convo_leverage=e.leverage,
            ))
            if e.symbol:
                f.symbols.add(e.symbol)
    for model_id, symbol, side, entry_ms, exit_ms in positions:
        f = facts[model_id]
        f.positions.append((symbol, side, entry_ms / 1000, ms_to_s(exit_ms)))
        f.symbols.add(symbol)
    for model_id, ts_ms in last_messages:
        ts_s = ts_ms / 1000
        f = facts[model_id]
        if f.last_convo is None or ts_s > f.last_convo.timestamp_s:
            # nof1's document ids look like "grok-4_1761452289.500892": model and time in seconds
            f.last_convo = ConvoRef(timestamp_s=ts_s, doc_id=f"{model_id}_{ts_s}")
    return facts


def model_analytics(f: ModelFacts, now_s: float) -> dict:
    """The ModelAnalytics object of one model, from its facts."""
    intervals: list[PositionInterval] = []
    if f.invocations_s:
        intervals = position_intervals(
            f.positions, f.symbols, min(f.invocations_s), max(f.invocations_s), now_s
        )
    return compute_model_analytics(
        f.model_id,
        f.trades,
        stats=f.stats,
        decisions=f.decisions,
        invocations_s=f.invocations_s,
        position_intervals=intervals,
        last_convo=f.last_convo,
        now_s=now_s,
    )
