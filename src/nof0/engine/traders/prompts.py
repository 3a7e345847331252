"""Prompt templates (etc/prompts/*.tmpl, engine.md "Prompts"), rendered from a cycle's context.

A template is two ``string.Template`` texts separated by a line ``=== user ===``: the system prompt
(the trader's character and rules) and the user prompt (the cycle's numbers). Placeholders:

``$trader_id $trader_name $cycle_number $invocations $minutes_since_start $now_utc`` and the blocks
``$market`` (every candidate symbol: price, 1h/4h change, EMA20/50, MACD 12/26/9, RSI 7/14, ATR 3/14,
funding, open interest), ``$account``, ``$positions``, ``$limits``, ``$cooldowns`` and ``$contract``
(the reply format). An unknown placeholder stops the trader with the file and the name.

The template's SHA-256 is its version (``template_digest``); each cycle also stores the SHA-256 of the
rendered system + user text (``prompt_digest``).
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nof0.engine.traders.context import DecisionContext, Indicators, SymbolView

__all__ = ["PromptTemplate", "PromptError", "Rendered", "load_template", "CONTRACT"]

SEPARATOR = "=== user ==="

CONTRACT = """Answer with one JSON object (you may reason in plain text before it):
{"cot_trace_summary": "<one line: what you do and why>",
 "decisions": {"<COIN>": {"signal": "buy_to_enter" | "sell_to_enter" | "hold" | "close_position",
   "quantity": <coins, > 0 for an entry>, "leverage": <x>, "profit_target": <price>, "stop_loss": <price>,
   "invalidation_condition": "<when the idea is wrong>", "confidence": <0..1>, "risk_usd": <USD lost at the stop>,
   "justification": "<why>"}}}
One entry per coin you have a view on. An entry needs quantity, leverage, profit_target, stop_loss and
confidence; close_position closes the whole position; hold changes nothing. You cannot add to an open
position."""


class PromptError(ValueError):
    """A template problem, naming the file."""


@dataclass(frozen=True, slots=True)
class Rendered:
    system: str
    user: str
    prompt_digest: str  # sha256 of the rendered text
    template_digest: str  # sha256 of the template file


@dataclass(frozen=True)
class PromptTemplate:
    path: str
    system: string.Template
    user: string.Template
    digest: str

    def render(self, ctx: DecisionContext, trader_name: str) -> Rendered:
        values = {
            "trader_id": ctx.trader_id, "trader_name": trader_name, "cycle_number": ctx.cycle_number,
            "invocations": ctx.invocations, "minutes_since_start": ctx.minutes_since_start,
            "now_utc": datetime.fromtimestamp(ctx.now_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "market": market_block(ctx), "account": account_block(ctx), "positions": positions_block(ctx),
            "limits": limits_block(ctx), "cooldowns": cooldowns_block(ctx), "contract": CONTRACT,
        }
        try:
            system = self.system.substitute(values)
            user = self.user.substitute(values)
        except (KeyError, ValueError) as exc:
            raise PromptError(f"{self.path}: unknown or malformed placeholder {exc}") from None
        digest = hashlib.sha256((system + "\n" + SEPARATOR + "\n" + user).encode()).hexdigest()
        return Rendered(system, user, f"sha256:{digest}", self.digest)


def load_template(path: Path) -> PromptTemplate:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PromptError(f"{path}: cannot read the prompt template ({exc.strerror or exc})") from None
    text = raw.decode("utf-8", "replace")
    if SEPARATOR not in text:
        raise PromptError(f"{path}: a template needs a line {SEPARATOR!r} between the system and the user prompt")
    system, _, user = text.partition(SEPARATOR)
    template = PromptTemplate(str(path), string.Template(system.strip() + "\n"), string.Template(user.strip() + "\n"),
                              "sha256:" + hashlib.sha256(raw).hexdigest())
    for part in (template.system, template.user):
        bad = [m.group(0) for m in part.pattern.finditer(part.template) if m.group("invalid") is not None]
        if bad:
            raise PromptError(f"{path}: malformed placeholder near {bad[0]!r} (write $$ for a dollar sign)")
    return template


# ---------------------------------------------------------------------------- blocks


def _n(value: float | None, digits: int = 6) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def _series(values: tuple) -> str:
    return "[" + ", ".join(_n(v) for v in values) + "]"


def _indicators(ind: Indicators, long: bool) -> list[str]:
    lines = [f"  {ind.interval} candles: EMA20 {_n(ind.ema20)}, EMA50 {_n(ind.ema50)}, MACD {_n(ind.macd, 4)}"
             f" (signal {_n(ind.macd_signal, 4)}, histogram {_n(ind.macd_hist, 4)}), RSI7 {_n(ind.rsi7, 4)},"
             f" RSI14 {_n(ind.rsi14, 4)}, ATR3 {_n(ind.atr3, 4)}, ATR14 {_n(ind.atr14, 4)}"]
    if not long and ind.closes:
        lines.append(f"  last {len(ind.closes)} closes, oldest first: {_series(ind.closes)}")
        lines.append(f"  EMA20 series: {_series(ind.ema20_series)}")
        lines.append(f"  MACD series: {_series(ind.macd_series)}")
        lines.append(f"  RSI7 series: {_series(ind.rsi7_series)}; RSI14 series: {_series(ind.rsi14_series)}")
    return lines


def _symbol(v: SymbolView) -> list[str]:
    change = lambda c: "n/a" if c is None else f"{c:+.2f}%"  # noqa: E731
    funding = "n/a" if v.funding is None else f"{v.funding * 100:.5f}%/h"
    oi = "n/a" if v.open_interest is None else f"{v.open_interest:,.2f} coins ({v.open_interest_usd:,.0f} USD)"
    lines = [f"{v.symbol}: price {_n(v.price)}, 1h {change(v.change_1h_pct)}, 4h {change(v.change_4h_pct)},"
             f" funding {funding}, open interest {oi}, max leverage {_n(v.max_leverage, 3)}"]
    return lines + _indicators(v.intraday, False) + _indicators(v.longterm, True)


class _Rendered:
    """The market blocks rendered lately, by the identity of their views: the traders of one tick share
    their ``SymbolView`` objects (``context_builder``), so the block is formatted once per tick, not once
    per trader. The views are kept with the text, so an id is never reused while its entry lives."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.entries: dict[tuple[int, ...], tuple[tuple[SymbolView, ...], str]] = {}

    def get(self, views: tuple[SymbolView, ...]) -> str:
        key = tuple(map(id, views))
        hit = self.entries.get(key)
        if hit is not None:
            return hit[1]
        text = "\n".join(line for v in views for line in _symbol(v))
        if len(self.entries) >= self.size:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = (views, text)
        return text


_MARKET_TEXT = _Rendered()


def market_block(ctx: DecisionContext) -> str:
    if not ctx.symbols:
        return "(no market data yet)"
    return _MARKET_TEXT.get(tuple(v for _, v in sorted(ctx.symbols.items())))


def account_block(ctx: DecisionContext) -> str:
    a = ctx.account
    return (f"equity {a.equity_usd:,.2f} USD (return {a.return_pct:+.2f}% on {a.starting_capital_usd:,.0f}),"
            f" available {a.available_usd:,.2f} USD, margin used {a.margin_used_usd:,.2f} USD")


def positions_block(ctx: DecisionContext) -> str:
    if not ctx.positions:
        return "none"
    out = []
    for p in sorted(ctx.positions.values(), key=lambda p: p.symbol):
        plan = ", ".join(f"{k} {p.exit_plan[k]}" for k in ("profit_target", "stop_loss", "invalidation_condition")
                         if p.exit_plan.get(k) is not None)
        out.append(f"{p.symbol}: {p.side} {p.quantity:g} @ {_n(p.entry_price)} (mark {_n(p.mark)}), {p.leverage:g}x,"
                   f" margin {p.margin_usd:,.2f} USD, unrealized {p.unrealized_pnl:+,.2f} USD"
                   + (f"; exit plan: {plan}" if plan else ""))
    return "\n".join(out)


def limits_block(ctx: DecisionContext) -> str:
    lim = ctx.limits
    caps = ", ".join(f"{s} {c:g}x" for s, c in sorted(lim.leverage_caps.items()))
    return (f"at most {lim.max_positions} positions; at most {lim.max_position_size_usd:,.0f} USD notional per position;"
            f" margin use at most {lim.max_margin_usage_pct:g}% of equity; confidence at least {lim.min_confidence:g};"
            f" reward/risk at least {lim.min_risk_reward_ratio:g}; open interest x price at least"
            f" {lim.min_liquidity_usd:,.0f} USD; leverage caps: {caps or 'n/a'};"
            f" symbols: {', '.join(lim.allowed_symbols)}")


def cooldowns_block(ctx: DecisionContext) -> str:
    if not ctx.cooldowns:
        return "none"
    return ", ".join(f"{s} until {datetime.fromtimestamp(t / 1000, tz=timezone.utc):%H:%M:%S} UTC"
                     for s, t in sorted(ctx.cooldowns.items()))
