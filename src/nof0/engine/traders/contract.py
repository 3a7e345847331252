"""The decision contract (engine.md "Decision contract"): the model's reply, nof1's ``llm_response``.

A reply is JSON, possibly after free reasoning text (the cycle's chain of thought) or inside a fenced
block::

    {"cot_trace_summary": "...", "decisions": {"BTC": {"signal": "buy_to_enter", "quantity": 0.1,
     "leverage": 10, "profit_target": 105000, "stop_loss": 98000, "invalidation_condition": "...",
     "confidence": 0.62, "risk_usd": 300, "justification": "..."}}}

:func:`parse_reply` finds that object and validates it; a reply without one (malformed, truncated,
prose only) raises :class:`ContractError` naming what is wrong, and the cycle fails with it. In the
stored decisions ``buy_to_enter`` is ``long``, ``sell_to_enter`` ``short``, ``close_position`` ``close``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

__all__ = ["ContractDecision", "ParsedReply", "ContractError", "parse_reply", "STORED_SIGNAL", "WIRE_SIGNAL",
           "Signal"]

Signal = Literal["buy_to_enter", "sell_to_enter", "hold", "close_position"]
STORED_SIGNAL: dict[str, str] = {"buy_to_enter": "long", "sell_to_enter": "short", "hold": "hold",
                                 "close_position": "close"}
WIRE_SIGNAL: dict[str, str] = {v: k for k, v in STORED_SIGNAL.items()}

_Pos = Annotated[float, msgspec.Meta(gt=0, le=1e12)]
_NonNeg = Annotated[float, msgspec.Meta(ge=0, le=1e15)]
_SYMBOL = re.compile(r"[A-Za-z0-9._@/-]{1,64}")


class ContractDecision(msgspec.Struct, kw_only=True):
    """One coin's decision; unknown keys are ignored (models add their own)."""

    signal: Signal
    coin: str | None = None
    quantity: Annotated[float, msgspec.Meta(ge=-1e15, le=1e15)] | None = None  # signed in nof1's holds
    leverage: Annotated[float, msgspec.Meta(gt=0, le=1000)] | None = None
    profit_target: _Pos | None = None
    stop_loss: _Pos | None = None
    invalidation_condition: str = ""
    confidence: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    risk_usd: _NonNeg | None = None
    justification: str = ""


class ContractError(ValueError):
    """The reply does not hold a valid decision object; the message says what is wrong and where."""


@dataclass(frozen=True, slots=True)
class ParsedReply:
    cot_trace: str  # the reasoning before the JSON (or the gateway's reasoning field)
    summary: str
    decisions: dict[str, ContractDecision]  # coin -> decision, in the reply's order


_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.S)
_DECODER = json.JSONDecoder()


def _objects(text: str):
    """``(start, object)`` of every complete JSON object in ``text`` holding ``decisions``, in order."""
    i = text.find("{")
    while i != -1:
        try:
            obj, end = _DECODER.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict) and "decisions" in obj:
            yield i, obj
            i = text.find("{", end)
        else:
            i = text.find("{", i + 1)


def _find(text: str) -> tuple[str, Any]:
    """The reasoning before the decision object and the object itself."""
    stripped = text.strip()
    try:
        obj = json.loads(stripped)
        if isinstance(obj, dict):
            return "", obj
    except ValueError:
        pass
    for m in reversed(list(_FENCE.finditer(text))):
        inner = m.group(1).strip()
        try:
            obj = json.loads(inner)
        except ValueError:
            continue
        if isinstance(obj, dict) and "decisions" in obj:
            return text[: m.start()].strip(), obj
    found = list(_objects(text))
    if found:
        start, obj = found[-1]
        return text[:start].strip(), obj
    if "{" in text and "decisions" in text:
        raise ContractError("the reply's JSON is cut off or malformed: no complete object holding \"decisions\"")
    raise ContractError("the reply holds no JSON object with \"decisions\"")


def parse_reply(text: str | None, reasoning: str | None = None) -> ParsedReply:
    if text is None or not text.strip():
        raise ContractError("the reply is empty")
    cot, obj = _find(text)
    raw = obj.get("decisions")
    if not isinstance(raw, dict):
        raise ContractError(f"the decision object is invalid: decisions must map coins to decisions, got {raw!r:.80}")
    summary = obj.get("cot_trace_summary") or ""
    if not isinstance(summary, str):
        raise ContractError("the decision object is invalid: cot_trace_summary must be text")
    decisions: dict[str, ContractDecision] = {}
    for coin, value in raw.items():
        if not _SYMBOL.fullmatch(coin):
            raise ContractError(f"decisions: {coin[:70]!r} is not a coin symbol")
        try:
            decision = msgspec.convert(value, ContractDecision, strict=False)
        except msgspec.ValidationError as exc:
            msg, _, path = str(exc).partition(" - at `$")
            where = f"decisions.{coin}" + path.rstrip("`")
            raise ContractError(f"{where}: {msg}") from None
        if decision.coin is not None and decision.coin != coin:
            raise ContractError(f"decisions.{coin}.coin is {decision.coin!r}, not {coin!r}")
        decisions[coin] = decision
    cot_trace = "\n\n".join(part for part in (reasoning or "", cot) if part.strip())
    return ParsedReply(cot_trace=cot_trace, summary=summary, decisions=decisions)
