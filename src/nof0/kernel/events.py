"""The ingest events of design 2.4: one typed record per event type, a tagged union on ``"type"``.

The same records are used in process (the engine, the importer) and as JSON Lines
(``nof0 ingest FILE``); ``docs/events.md`` shows a line of each. Field types carry the validation
that msgspec can check while decoding (types, finite ranges, known sides and roles, sane timestamps,
key-safe ids); :func:`check_event` adds the checks that span fields or free-form structures
(``decision_cycle.decisions``, Hyperliquid's ``metaAndAssetCtxs``). Every failure names a field.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import UNSET, Meta, UnsetType

__all__ = [
    "Event", "EVENT_TYPES", "EventError", "check_event",
    "ModelEvent", "SymbolEvent", "PriceTick", "MarketMeta", "Fill", "Trade", "Position", "PositionClose",
    "EquitySnapshot", "ConversationMessage", "DecisionCycle", "TraderState", "SimOrder", "SimBalance", "LlmCall",
    "LLM_OUTCOMES",
    "UniverseEntry", "AssetCtx", "MIN_TS_MS", "MAX_TS_MS", "PRICE_LIMIT", "AMOUNT_LIMIT", "TINY_AMOUNT",
    "RESERVED_POSITION_METADATA", "position_version",
]

# Ids become Redis key parts (nof0.cache.keys): the same character set and length. Anchored with \A and
# \Z, never ^ and $: msgspec searches the pattern, and $ also matches before a final newline, so
# "gpt-5\n" would pass here and only fail in Postgres (whose CHECK rejects it), taking its batch down.
SAFE_ID = r"\A[A-Za-z0-9._@/-]{1,64}\Z"
# Timestamps between 2000-01-01 and 2100-01-01: catches seconds-for-milliseconds mix-ups both ways.
MIN_TS_MS, MAX_TS_MS = 946_684_800_000, 4_102_444_800_000
# Bounds of numbers (finite and far from the double range: sums, products and ratios of them computed
# downstream, in Python and in the views, never overflow). No price of this platform comes near 1e12 USD,
# no size or dollar amount near 1e15.
PRICE_LIMIT = 1e12
AMOUNT_LIMIT = 1e15
# The smallest non-zero magnitude of an equity or a starting capital: the views divide by them
# (return_pct, the returns of the sharpe ratio), and 1e15 / 1e-300 is no longer a double.
TINY_AMOUNT = 1e-6

SafeId = Annotated[str, Meta(pattern=SAFE_ID)]
TsMs = Annotated[int, Meta(ge=MIN_TS_MS, le=MAX_TS_MS)]
TsS = Annotated[float, Meta(ge=MIN_TS_MS / 1000, le=MAX_TS_MS / 1000)]
Price = Annotated[float, Meta(gt=0, le=PRICE_LIMIT)]
Capital = Annotated[float, Meta(ge=TINY_AMOUNT, le=AMOUNT_LIMIT)]
Size = Annotated[float, Meta(gt=0, le=AMOUNT_LIMIT)]
NonNegative = Annotated[float, Meta(ge=0, le=AMOUNT_LIMIT)]
Money = Annotated[float, Meta(ge=-AMOUNT_LIMIT, le=AMOUNT_LIMIT)]
Confidence = Annotated[float, Meta(ge=0, le=1)]
Leverage = Annotated[float, Meta(gt=0, le=1000)]
Oid = Annotated[int, Meta(ge=0, le=2**63 - 1)]
AwareTime = Annotated[datetime, Meta(tz=True)]
Text = Annotated[str, Meta(max_length=1_000_000)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
JsonObject = dict[str, Any]


class EventError(ValueError):
    """An invalid event: which field, what value, why."""

    def __init__(self, field: str | None, value: Any, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"{field}={value!r}: {reason}" if field else reason)


class _Event(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True):
    pass


# --------------------------------------------------------------------------- registration


class ModelEvent(_Event, tag="model"):
    """Register or update a model (trader) and its account. Absent optional fields keep stored values
    (a new model without ``display_name`` is named by its id)."""

    id: SafeId
    display_name: Name | None = None
    starting_capital_usd: Capital | None = None
    inception_ts: TsS | None = None  # seconds, microsecond precision (accounts.inception_at)
    inception_id: uuid.UUID | None = None  # accounts.inception_id (nof1's since-inception record id)
    trader_config: JsonObject | None = None


class SymbolEvent(_Event, tag="symbol"):
    symbol: SafeId
    quote_currency: Annotated[str, Meta(pattern=r"\A[A-Z0-9]{1,16}\Z")] | None = None


# --------------------------------------------------------------------------- prices & market


class PriceTick(_Event, tag="price_tick", gc=False):
    symbol: SafeId
    price: Price
    ts_ms: TsMs
    source: SafeId = "hyperliquid"


NumStr = Annotated[str, Meta(pattern=r"\A-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\Z")]


class UniverseEntry(msgspec.Struct, kw_only=True):
    """Hyperliquid ``meta.universe[i]`` (unknown venue fields are ignored)."""

    name: SafeId
    szDecimals: Annotated[int, Meta(ge=0, le=30)]
    maxLeverage: Leverage
    onlyIsolated: bool | None = None
    marginTableId: int | None = None
    isDelisted: bool | None = None


class AssetCtx(msgspec.Struct, kw_only=True):
    """Hyperliquid ``assetCtxs[i]``: numbers as strings, as the venue sends them."""

    funding: NumStr
    openInterest: NumStr
    prevDayPx: NumStr
    dayNtlVlm: NumStr
    premium: NumStr | None = None
    oraclePx: NumStr
    markPx: NumStr
    midPx: NumStr | None = None
    impactPxs: list[NumStr] | None = None
    dayBaseVlm: NumStr | None = None


class UniverseMeta(msgspec.Struct, kw_only=True):
    universe: list[UniverseEntry]


class MarketMeta(_Event, tag="market_meta"):
    """Hyperliquid's ``metaAndAssetCtxs`` response as it comes: ``[{"universe": [...]}, [ctx, ...]]``."""

    provider: SafeId
    ts_ms: TsMs
    meta_and_asset_ctxs: tuple[UniverseMeta, list[AssetCtx]]


# --------------------------------------------------------------------------- trading


class Fill(_Event, tag="fill"):
    """One execution; it opens, extends, reduces, closes or flips the model's position."""

    model_id: SafeId
    symbol: SafeId
    side: Literal["buy", "sell"]
    price: Price
    size: Size
    fee_usd: Money
    ts_ms: TsMs
    oid: Oid
    tid: Oid
    crossed: bool | None = None
    leverage: Leverage | None = None
    confidence: Confidence | None = None
    exit_plan: JsonObject | None = None
    liquidation: JsonObject | None = None


class Trade(_Event, tag="trade"):
    """A closed round trip in nof1's trade shape (times in seconds). Upserted by ``id``.

    ``entry_human_time``/``exit_human_time`` are accepted and ignored: they are derived from the times.
    """

    id: SafeId
    model_id: SafeId
    symbol: SafeId
    side: Literal["long", "short"]
    quantity: Money  # signed like nof1: negative for shorts
    entry_price: Price
    exit_price: Price
    entry_time: TsS
    exit_time: TsS
    trade_id: Annotated[str, Meta(max_length=256)] | None = None
    trade_type: Annotated[str, Meta(max_length=32)] | None = None
    leverage: Annotated[float, Meta(ge=0, le=1000)] | None = None
    confidence: Confidence | None = None
    entry_human_time: str | None = None
    exit_human_time: str | None = None
    entry_sz: NonNegative | None = None
    exit_sz: NonNegative | None = None
    entry_tid: Oid | None = None
    exit_tid: Oid | None = None
    entry_oid: Oid | None = None
    exit_oid: Oid | None = None
    entry_crossed: bool | None = None
    exit_crossed: bool | None = None
    entry_liquidation: JsonObject | None = None
    exit_liquidation: JsonObject | None = None
    entry_commission_dollars: Money | None = None
    exit_commission_dollars: Money | None = None
    entry_closed_pnl: Money | None = None
    exit_closed_pnl: Money | None = None
    exit_plan: JsonObject | None = None
    realized_gross_pnl: Money | None = None
    realized_net_pnl: Money | None = None
    total_commission_dollars: Money | None = None


class Position(_Event, tag="position"):
    """Open or adjust a position (``quantity`` is the size; ``side`` gives the direction).

    ``updated_ts_ms`` versions the position: a state replaces a stored one only when it is newer
    (:func:`position_version`), so adjustments arriving in any order leave the newest.
    """

    id: SafeId
    model_id: SafeId
    symbol: SafeId
    side: Literal["long", "short"]
    entry_price: Price
    quantity: Size
    entry_ts_ms: TsMs
    leverage: Leverage | None = None
    confidence: Confidence | None = None
    commission: Money | None = None
    exit_plan: JsonObject | None = None
    metadata: JsonObject | None = None
    entry_oid: Oid | None = None
    updated_ts_ms: TsMs | None = None  # when this state was observed; default entry_ts_ms


# Position JSON fields computed from the row and the mark (trades.payloads.position_json): metadata
# passes further facts through, never these.
RESERVED_POSITION_METADATA = frozenset({
    "symbol", "side", "quantity", "entry_price", "entry_time", "entry_oid", "leverage", "confidence", "exit_plan",
    "commission", "current_price", "unrealized_pnl", "margin",
})

_CANONICAL = msgspec.json.Encoder(order="sorted")


def position_version(ev: "Position") -> tuple[int, str]:
    """The order of a position's states: ``updated_ts_ms`` (default ``entry_ts_ms``), then, between
    different states of the same millisecond, the md5 of the state's canonical JSON (an arbitrary but
    fixed choice, so arrival order never matters). Equal states have equal versions."""
    ts = ev.updated_ts_ms if ev.updated_ts_ms is not None else ev.entry_ts_ms
    state = msgspec.structs.replace(ev, updated_ts_ms=ts)
    return ts, hashlib.md5(_CANONICAL.encode(state)).hexdigest()


class PositionClose(_Event, tag="position_close"):
    id: SafeId
    exit_price: Price
    exit_ts_ms: TsMs
    exit_oid: Oid | None = None
    commission: Money | None = None  # the exit fee, when the venue reports it


class EquitySnapshot(_Event, tag="equity_snapshot"):
    model_id: SafeId
    ts_ms: TsMs
    equity_usd: Money
    realized_pnl: Money = 0.0
    unrealized_pnl: Money = 0.0


# --------------------------------------------------------------------------- conversations & journal


class ConversationMessage(_Event, tag="conversation_message"):
    model_id: SafeId
    role: Literal["system", "user", "assistant"]
    content: Text
    ts_ms: TsMs
    metadata: JsonObject | None = None


class DecisionCycle(_Event, tag="decision_cycle"):
    """One executor cycle. ``decisions``: objects with ``signal`` (long, short, close, hold), optional
    ``symbol``, ``confidence`` (0..1) and ``leverage`` (> 0); other keys are kept verbatim."""

    model_id: SafeId
    cycle_number: Annotated[int, Meta(ge=0, le=2**31 - 1)]
    decisions: list[JsonObject]
    success: bool
    executed_at: AwareTime
    prompt_digest: Annotated[str, Meta(max_length=512)] | None = None
    cot_trace: Text | None = None
    error_message: Text | None = None
    # the engine's journal (migration 009): nof1's summary line, the prompt template's version,
    # the process run that made the cycle and when its reply was in
    cot_trace_summary: Text | None = None
    template_digest: Annotated[str, Meta(max_length=512)] | None = None
    run_id: Annotated[str, Meta(max_length=128)] | None = None
    finished_at: AwareTime | None = None
    # the lease's fencing token of the engine process writing for the trader (docs/scaling.md); None: unfenced
    fencing_token: Annotated[int, Meta(ge=0, le=2**62)] | None = None


# What became of one model call: a reply (``ok``; ``truncated`` when the model hit max_tokens;
# ``invalid_reply`` when its text broke the decision contract), or why there was none.
LLM_OUTCOMES = ("ok", "truncated", "invalid_reply", "timeout", "rate_limited", "server_error", "connection_error",
                "refused", "error")


class LlmCall(_Event, tag="llm_call"):
    """One call of a trader's model (design "LLM client": latency, tokens, cost and outcome of every
    call). **Key:** ``(trader_id, cycle_number, attempt)``; a daily budget sums these rows."""

    trader_id: SafeId
    cycle_number: Annotated[int, Meta(ge=0, le=2**31 - 1)]
    attempt: Annotated[int, Meta(ge=1, le=1000)]
    model: Name
    ts_ms: TsMs
    outcome: Literal["ok", "truncated", "invalid_reply", "timeout", "rate_limited", "server_error",
                     "connection_error", "refused", "error"]
    provider_model: Annotated[str, Meta(max_length=200)] | None = None
    latency_ms: NonNegative = 0.0
    prompt_tokens: Annotated[int, Meta(ge=0, le=2**31 - 1)] = 0
    completion_tokens: Annotated[int, Meta(ge=0, le=2**31 - 1)] = 0
    cost_usd: NonNegative = 0.0
    error: Annotated[str, Meta(max_length=4000)] | None = None


# --------------------------------------------------------------------------- traders & simulator


class TraderState(_Event, tag="trader_state"):
    """The columns of design 2.2 ``trader_state``. Absent fields keep stored values; ``null`` clears."""

    trader_id: SafeId
    exchange_provider: SafeId
    market_provider: SafeId
    allocation_pct: Annotated[float, Meta(ge=0, le=100)] | None | UnsetType = UNSET
    cooldown: JsonObject | UnsetType = UNSET
    risk_guards: JsonObject | UnsetType = UNSET
    last_decision_at: AwareTime | None | UnsetType = UNSET
    pause_until: AwareTime | None | UnsetType = UNSET
    # the lease's fencing token of the engine process writing for the trader (docs/scaling.md); None: unfenced
    fencing_token: Annotated[int, Meta(ge=0, le=2**62)] | None = None


class SimOrder(_Event, tag="sim_order"):
    """A paper order's state. ``(ts_ms, seq)`` versions it: a state replaces an older one only."""

    trader_id: SafeId
    oid: Oid
    symbol: SafeId
    side: Literal["buy", "sell"]
    size: Size
    status: Literal["open", "filled", "canceled", "rejected"]
    ts_ms: TsMs
    order_type: Literal["limit", "market", "stop", "take_profit"] = "limit"
    price: Price | None = None
    filled_size: NonNegative = 0.0
    reduce_only: bool = False
    # the engine's fields (migration 008); absent in older producers' events
    tif: Literal["Ioc", "Gtc", "Alo"] | None = None
    trigger_px: Price | None = None
    cloid: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    leverage: Leverage | None = None
    avg_px: Price | None = None
    fee_usd: Money | None = None
    reserved_usd: NonNegative | None = None  # margin a resting order holds back
    reason: Annotated[str, Meta(max_length=1000)] | None = None  # why it was rejected or canceled
    confidence: Confidence | None = None
    exit_plan: JsonObject | None = None
    seq: Oid = 0  # the trader's sequence: orders two states of one millisecond


class SimBalance(_Event, tag="sim_balance"):
    """A paper account's balance of one asset. ``(ts_ms, seq)`` versions it, like ``sim_order``."""

    trader_id: SafeId
    asset: SafeId
    total: Money
    available: Money
    ts_ms: TsMs
    margin_used: NonNegative | None = None
    funding_ms: TsMs | None = None  # the last hour boundary whose funding is settled
    leverage: dict[SafeId, Leverage] | None = None  # the account's leverage per symbol
    seq: Oid = 0


Event = Union[
    ModelEvent, SymbolEvent, PriceTick, MarketMeta, Fill, Trade, Position, PositionClose, EquitySnapshot,
    ConversationMessage, DecisionCycle, TraderState, SimOrder, SimBalance, LlmCall,
]
EVENT_TYPES: dict[str, type] = {cls.__struct_config__.tag: cls for cls in Event.__args__}  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- checks msgspec cannot express

_SIGNALS = ("long", "short", "close", "hold")
_SYMBOL = re.compile(SAFE_ID)


def _finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_decisions(decisions: list[JsonObject]) -> None:
    for i, d in enumerate(decisions):
        where = f"decisions[{i}]"
        signal = d.get("signal")
        if signal not in _SIGNALS:
            raise EventError(f"{where}.signal", signal, f"must be one of {', '.join(_SIGNALS)}")
        if "symbol" in d and d["symbol"] is not None and not (isinstance(d["symbol"], str) and _SYMBOL.fullmatch(d["symbol"])):
            raise EventError(f"{where}.symbol", d["symbol"], "must be a symbol (letters, digits and . _ - @ /)")
        c = d.get("confidence")
        if c is not None and not (_finite_number(c) and 0 <= c <= 1):
            raise EventError(f"{where}.confidence", c, "must be a number from 0 to 1")
        lev = d.get("leverage")
        if lev is not None and not (_finite_number(lev) and lev > 0):
            raise EventError(f"{where}.leverage", lev, "must be a number > 0")


def _check_market_meta(ev: MarketMeta) -> None:
    meta, ctxs = ev.meta_and_asset_ctxs
    if len(meta.universe) != len(ctxs):
        raise EventError(
            "meta_and_asset_ctxs[1]", f"{len(ctxs)} contexts",
            f"must hold one asset context per universe entry ({len(meta.universe)})",
        )
    seen: set[str] = set()
    for i, entry in enumerate(meta.universe):
        if entry.name in seen:
            raise EventError(f"meta_and_asset_ctxs[0].universe[{i}].name", entry.name, "duplicate asset name")
        seen.add(entry.name)
    for i, ctx in enumerate(ctxs):
        where = f"meta_and_asset_ctxs[1][{i}]"
        for name in ("funding", "openInterest", "prevDayPx", "dayNtlVlm", "premium", "oraclePx", "markPx",
                     "midPx", "dayBaseVlm"):
            _check_number_text(f"{where}.{name}", getattr(ctx, name))
        for j, px in enumerate(ctx.impactPxs or ()):
            _check_number_text(f"{where}.impactPxs[{j}]", px)


def _check_number_text(field: str, raw: str | None) -> None:
    # the venue's numbers come as strings: "1e400" matches the pattern but is no double
    if raw is not None and not abs(float(raw)) <= AMOUNT_LIMIT:
        raise EventError(field, raw, f"must be a finite number between -{AMOUNT_LIMIT:g} and {AMOUNT_LIMIT:g}")


def _check_free_form(ev: Any) -> None:
    # free-form objects end up in JSONB; JSON has no NaN or infinity (in-process producers could pass them)
    for name in ("exit_plan", "metadata", "liquidation", "entry_liquidation", "exit_liquidation", "trader_config",
                 "cooldown", "risk_guards"):
        value = getattr(ev, name, None)
        if isinstance(value, dict) and not _all_finite(value):
            raise EventError(name, value, "numbers must be finite (JSON has no NaN or Infinity)")


def _all_finite(node: Any) -> bool:
    if isinstance(node, float):
        return math.isfinite(node)
    if isinstance(node, dict):
        return all(_all_finite(v) for v in node.values())
    if isinstance(node, list):
        return all(_all_finite(v) for v in node)
    return True


def _check_position_metadata(ev: Position) -> None:
    for key in sorted(RESERVED_POSITION_METADATA.intersection(ev.metadata or ())):
        raise EventError(f"metadata.{key}", ev.metadata[key],  # type: ignore[index]
                         "is computed from the position (its columns and the mark price); it cannot be metadata")


def check_event(ev: Any) -> None:
    """Cross-field checks after type validation; raises :class:`EventError` naming the field."""
    if isinstance(ev, Trade) and ev.exit_time < ev.entry_time:
        raise EventError("exit_time", ev.exit_time, f"is before entry_time {ev.entry_time}")
    elif isinstance(ev, EquitySnapshot) and ev.equity_usd != 0 and abs(ev.equity_usd) < TINY_AMOUNT:
        raise EventError("equity_usd", ev.equity_usd, f"must be 0 or at least {TINY_AMOUNT:g} in magnitude")
    elif isinstance(ev, Position):
        if ev.updated_ts_ms is not None and ev.updated_ts_ms < ev.entry_ts_ms:
            raise EventError("updated_ts_ms", ev.updated_ts_ms, f"is before entry_ts_ms {ev.entry_ts_ms}")
        _check_position_metadata(ev)
    elif isinstance(ev, DecisionCycle):
        _check_decisions(ev.decisions)
        if not _all_finite(ev.decisions):
            raise EventError("decisions", ev.decisions, "numbers must be finite (JSON has no NaN or Infinity)")
    elif isinstance(ev, MarketMeta):
        _check_market_meta(ev)
    elif isinstance(ev, SimOrder) and ev.filled_size > ev.size:
        raise EventError("filled_size", ev.filled_size, f"is larger than size {ev.size}")
    _check_free_form(ev)
