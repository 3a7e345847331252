"""One decision cycle of one trader (engine.md "Executor", "Journal").

1. the closes since the last cycle start their cooldowns (``after_loss`` / ``after_close``), read from
   the trades in the store, so a take-profit or stop-loss fill counts like a close the model asked for;
2. the context is built (``context_builder``), the prompt rendered (``prompts``), the model asked once;
3. the reply is parsed (``contract``); entries go through every guard (``guards``), each refusal is
   recorded with its reason; a reply that cannot be parsed executes nothing and fails the cycle with the
   reason and the raw reply;
4. the journal is written through ``IngestService`` *before* any order: the cycle (its accepted
   actions ``pending``), its system prompt, user prompt and reply as conversation messages, the model
   calls, the trader state;
5. closes run before opens; each entry carries its take-profit and stop-loss trigger orders; every
   order has a client order id derived from (trader, cycle, symbol, action), so re-sending a pending
   action after a crash never places it twice;
6. the cycle is written again with each action's outcome, and the trader state with its cooldowns.

A restart finds a cycle whose actions are still ``pending`` and finishes it (:meth:`Executor.resume`)
before starting the next one: no cycle is lost or run twice.

The traders due at one tick run their cycles at once, and their store round trips are shared
(``grouped``): the trades read for cooldowns is one query for every cycle asking at that moment, and the
journal writes of every cycle at the same step are one IngestService batch (one transaction, one set of
Redis publishes). Each cycle still waits for its own journal to commit before its orders go out.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from nof0.config import ExecutorConfig
from nof0.engine.exchange.provider import ExchangeError, OrderRequest, Trigger
from nof0.engine.leases import LeaseLost
from nof0.traders.fencing import STALE_TOKEN
from nof0.engine.llm.client import CallRecord, Completion, ModelUnavailable
from nof0.engine.traders.context import DecisionContext
from nof0.engine.traders.context_builder import ContextBuilder
from nof0.engine.traders.contract import STORED_SIGNAL, ContractDecision, ContractError, parse_reply
from nof0.engine.traders.grouped import GroupCall
from nof0.engine.traders.guards import EntryPlan, check_entry
from nof0.engine.traders.cycle_cost import Share, SharedClock
from nof0.engine.traders.runtime_state import TraderRuntime, ms_to_dt
from nof0.ingest.service import IngestService
from nof0.kernel.events import ConversationMessage, DecisionCycle, LlmCall
from nof0.obs.logging import get_logger, log_scope
from nof0.runtime import Runtime
from nof0.trades import repository as trades_repo

__all__ = ["Executor", "CycleResult", "cloid_for"]

log = get_logger("nof0.engine.executor")

_CONTRACT_KEYS = ("quantity", "leverage", "profit_target", "stop_loss", "invalidation_condition", "confidence",
                  "risk_usd", "justification")


def cloid_for(trader_id: str, cycle: int, symbol: str, action: str) -> str:
    """Hyperliquid's client order id shape (0x + 16 bytes), stable for one action of one cycle."""
    return "0x" + hashlib.md5(f"{trader_id}|{cycle}|{symbol}|{action}".encode()).hexdigest()


@dataclass
class CycleResult:
    trader_id: str
    cycle_number: int | None  # None: no cycle was made (model unavailable)
    success: bool = False
    error: str | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    engine_ms: float = 0.0  # the engine's own time: everything but the model's reply
    model_ms: float = 0.0
    cost_ms: float = 0.0  # engine_ms with each moment shared among the cycles running then (cycle_cost)


class Executor:
    def __init__(self, rt: Runtime, ingest: IngestService, builder: ContextBuilder, executor: ExecutorConfig,
                 run_id: str) -> None:
        self.rt = rt
        self.ingest = ingest
        self.builder = builder
        self.executor = executor
        self.run_id = run_id
        self.shared_clock = SharedClock()
        self._journal = GroupCall(self._write_group)
        self._closed_after = GroupCall(self._read_closes)

    # ------------------------------------------------------------------ cooldowns from the store
    async def observe_closes(self, tr: TraderRuntime) -> bool:
        """Start the cooldown of every trade closed since the last look; True when the state changed."""
        trades = await self._closed_after((tr.id, tr.trades_seen_ms))
        changed = False
        for t in sorted(trades, key=lambda t: t["exit_ts_ms"]):
            loss = (t["realized_net_pnl"] or 0) < 0
            kind = "after_loss" if loss else "after_close"
            span = tr.cooldown_ms(kind) or (tr.cooldown_ms("after_close") if loss else 0)
            if span:
                until = t["exit_ts_ms"] + span
                current = tr.cooldowns.get(t["symbol"])
                if current is None or current["until_ms"] < until:
                    tr.cooldowns[t["symbol"]] = {"until_ms": until, "reason": kind}
            tr.trades_seen_ms = max(tr.trades_seen_ms, t["exit_ts_ms"])
            changed = True
        return changed

    # ------------------------------------------------------------------ one cycle
    async def run_cycle(self, tr: TraderRuntime, now_ms: int) -> CycleResult:
        started = time.perf_counter()
        share = self.shared_clock.start()
        try:
            result = await self._cycle(tr, now_ms, started, share)
        finally:
            self.shared_clock.stop(share)
        result.cost_ms = share.seconds * 1000
        return result

    async def _cycle(self, tr: TraderRuntime, now_ms: int, started: float, share: Share) -> CycleResult:
        assert tr.model is not None and tr.template is not None
        why = await tr.model.unavailable_reason(now_ms)
        if why:
            return CycleResult(tr.id, None, error=why)
        await self.observe_closes(tr)
        n = tr.next_cycle
        ctx = await self.builder.build(tr.config, tr.exchange, tr.market, tr.limits, cycle_number=n, now_ms=now_ms,
                                       started_ms=tr.started_ms or now_ms, cooldowns=tr.active_cooldowns(now_ms),
                                       invocations=tr.invocations)
        rendered = tr.template.render(ctx, tr.config.name)
        model_started = time.perf_counter()
        self.shared_clock.stop(share)  # the model's time is no cost of the engine's
        try:
            completion = await tr.model.reply(rendered.system, rendered.user, ctx)
        except ModelUnavailable as exc:
            return CycleResult(tr.id, None, error=str(exc))
        finally:
            self.shared_clock.start(share)
        model_ms = (time.perf_counter() - model_started) * 1000
        finished_ms = self.rt.clock.now_ms()
        result = CycleResult(tr.id, n, model_ms=model_ms)
        _count_calls(self.rt.metrics, tr.id, completion)
        cot, summary, planned_closes, planned_entries = "", "", [], []
        if completion.text is None:
            result.error = f"no reply from {tr.model.name}: {completion.outcome}: {completion.error}"
            self.rt.metrics.trader_errors.labels(tr.id, "model").inc()
        else:
            try:
                parsed = parse_reply(completion.text, completion.reasoning)
            except ContractError as exc:
                result.error = f"the reply broke the decision contract: {exc}"
                self.rt.metrics.trader_errors.labels(tr.id, "parse").inc()
                _mark_invalid(completion, str(exc))
            else:
                cot, summary = parsed.cot_trace, parsed.summary
                result.decisions, planned_closes, planned_entries = self._plan(tr, ctx, parsed.decisions)
                result.success = True
        # the journal first: a crash from here on resumes this cycle, never loses or repeats it
        tr.next_cycle = n + 1
        tr.invocations += 1
        tr.last_decision_ms = now_ms
        if tr.started_ms == 0:
            tr.started_ms = now_ms
        events: list[Any] = [_llm_call(tr.id, n, c) for c in completion.calls]
        meta = {"cycle": n}
        events += [ConversationMessage(model_id=tr.id, role="system", content=rendered.system, ts_ms=now_ms, metadata=meta),
                   ConversationMessage(model_id=tr.id, role="user", content=rendered.user, ts_ms=now_ms, metadata=meta)]
        if completion.text:
            events.append(ConversationMessage(model_id=tr.id, role="assistant", content=completion.text, ts_ms=now_ms,
                                              metadata=meta))
        cycle = DecisionCycle(model_id=tr.id, cycle_number=n, decisions=result.decisions, success=result.success,
                              executed_at=ms_to_dt(now_ms), prompt_digest=rendered.prompt_digest, cot_trace=cot or None,
                              error_message=result.error, cot_trace_summary=summary or None,
                              template_digest=rendered.template_digest, run_id=self.run_id,
                              finished_at=ms_to_dt(max(finished_ms, now_ms)))
        events.append(cycle)
        events.append(tr.state_event(last_decision_at=ms_to_dt(now_ms), cooldown=tr.cooldown_json()))
        await self._write(events, tr.id)
        if result.success and (planned_closes or planned_entries):
            await self._execute(tr, n, result.decisions)
            await self.observe_closes(tr)
            await self._write([msgspec_replace(cycle, decisions=result.decisions),
                               tr.state_event(cooldown=tr.cooldown_json())], tr.id)
        if result.error:
            log.warning("decision cycle failed", trader=tr.id, cycle=n, error=result.error)
        result.engine_ms = (time.perf_counter() - started) * 1000 - model_ms
        return result

    async def resume(self, tr: TraderRuntime, last: dict[str, Any]) -> bool:
        """Finish a cycle a crash left with ``pending`` actions; True when there was one."""
        decisions = list(last.get("decisions") or [])
        if not any(d.get("status") == "pending" for d in decisions):
            return False
        n = last["cycle_number"]
        log.info("resuming a cycle left pending", trader=tr.id, cycle=n)
        await self._execute(tr, n, decisions)
        await self.observe_closes(tr)
        cycle = DecisionCycle(
            model_id=tr.id, cycle_number=n, decisions=decisions, success=bool(last.get("success")),
            executed_at=last["executed_at"], prompt_digest=last.get("prompt_digest"), cot_trace=last.get("cot_trace"),
            error_message=last.get("error_message"), cot_trace_summary=last.get("cot_trace_summary"),
            template_digest=last.get("template_digest"), run_id=last.get("run_id"), finished_at=last.get("finished_at"))
        await self._write([cycle, tr.state_event(cooldown=tr.cooldown_json())], tr.id)
        return True

    async def _write(self, events: list[Any], trader_id: str) -> None:
        rejections = await self._journal((trader_id, events))
        if any(STALE_TOKEN in r for r in rejections):
            # another process holds the trader now: this cycle must send no order (traders/fencing.py)
            raise LeaseLost(f"trader {trader_id!r}: {rejections[0]}")
        if rejections:
            # the journal is the truth of what the trader did: a refusal is a bug to see at once
            log.error("journal write refused", trader=trader_id, rejections=rejections)

    async def _write_group(self, requests: list[tuple[str, list[Any]]]) -> list[list[str]]:
        """One IngestService batch for the journal writes of every cycle asking at once; each learns its
        own events' rejections (named ``trader:<id> event <n>``)."""
        entries = [(f"trader:{trader_id} event {n}", ev) for trader_id, events in requests
                   for n, ev in enumerate(events, 1)]
        source = f"trader:{requests[0][0]}" if len(requests) == 1 else "traders"
        report = await self.ingest.ingest_located(entries, source=source)
        out: dict[str, list[str]] = {trader_id: [] for trader_id, _ in requests}
        for r in report.rejections:
            trader_id = r.where.partition(" ")[0].removeprefix("trader:")
            out.setdefault(trader_id, []).append(str(r))
        return [out[trader_id] for trader_id, _ in requests]

    async def _read_closes(self, requests: list[tuple[str, int]]) -> list[list[dict[str, Any]]]:
        """The trades closed since each trader last looked, for every cycle asking at once (one query)."""
        after: dict[str, int] = {}
        for trader_id, seen in requests:
            after[trader_id] = min(seen, after.get(trader_id, seen))
        async with self.rt.pool.connection() as conn, conn.transaction():
            rows = await trades_repo.list_trades_closed_after(conn, after, 50)
        by_trader: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_trader.setdefault(row["model_id"], []).append(row)
        return [[t for t in by_trader.get(trader_id, []) if t["exit_ts_ms"] > seen] for trader_id, seen in requests]

    # ------------------------------------------------------------------ guards
    def _plan(self, tr: TraderRuntime, ctx: DecisionContext, decisions: dict[str, ContractDecision]
              ) -> tuple[list[dict[str, Any]], list[str], list[EntryPlan]]:
        rp = tr.config.risk_params
        stored: list[dict[str, Any]] = []
        closing = {s for s, d in decisions.items() if d.signal == "close_position" and s in ctx.positions}
        entries: list[EntryPlan] = []
        reentry_waits = bool(tr.cooldown_ms("after_close") or tr.cooldown_ms("after_loss"))
        for symbol, d in decisions.items():
            row: dict[str, Any] = {"symbol": symbol, "signal": STORED_SIGNAL[d.signal]}
            row.update({k: getattr(d, k) for k in _CONTRACT_KEYS if getattr(d, k) not in (None, "")})
            if d.signal == "hold":
                row["status"] = "held"
            elif d.signal == "close_position":
                if symbol in closing:
                    row["status"] = "pending"
                    row["action"] = "close"
                else:
                    row.update(status="rejected", reason=f"no open {symbol} position to close")
            else:
                plan, reason = (None, f"{symbol} is closed in this cycle; re-entry waits for its cooldown") \
                    if symbol in closing and reentry_waits else check_entry(
                        symbol, d, ctx, closing=closing, planned=entries,
                        trader_caps=(rp.major_coin_leverage, rp.altcoin_leverage))
                if plan is None:
                    row.update(status="rejected", reason=reason)
                else:
                    entries.append(plan)
                    row.update(status="pending", action="open", side=plan.side, quantity=plan.quantity,
                               leverage=plan.leverage, entry_mark=plan.price)
            stored.append(row)
        for row in stored:
            if row["status"] == "rejected":
                log.info("decision rejected", trader=tr.id, cycle=ctx.cycle_number, symbol=row["symbol"],
                         reason=row["reason"])
        return stored, sorted(closing), entries

    # ------------------------------------------------------------------ orders
    async def _execute(self, tr: TraderRuntime, n: int, decisions: list[dict[str, Any]]) -> None:
        """Closes first, then entries with their triggers; each pending decision gets its outcome."""
        pending = [d for d in decisions if d.get("status") == "pending"]
        for d in sorted(pending, key=lambda d: d.get("action") != "close"):
            with log_scope(model=tr.id, symbol=d["symbol"], source_event="order"):  # the exchange's lines too
                await self._execute_one(tr, n, d)

    async def _execute_one(self, tr: TraderRuntime, n: int, d: dict[str, Any]) -> None:
        try:
            if d["action"] == "close":
                await self._close(tr, d)
            else:
                await self._open(tr, n, d)
        except ExchangeError as exc:
            d.update(status="failed", reason=f"exchange: {exc}")
        if d["status"] == "failed":
            self.rt.metrics.trader_errors.labels(tr.id, "exchange").inc()
            log.warning("order failed", trader=tr.id, cycle=n, symbol=d["symbol"], reason=d.get("reason"))

    async def _close(self, tr: TraderRuntime, d: dict[str, Any]) -> None:
        symbol = d["symbol"]
        held = {p.symbol for p in await tr.exchange.positions(tr.id)}
        if symbol in held:
            res = await tr.exchange.close_position(tr.id, symbol)
            if res.status not in ("filled", "partially_filled"):
                d.update(status="failed", reason=f"close {res.status}: {res.error or 'no fill'}")
                return
            d.update(oid=res.oid, fill_price=res.avg_price)
        for order in await tr.exchange.open_orders(tr.id):  # its take-profit and stop-loss go with it
            if order.symbol == symbol and order.reduce_only:
                await tr.exchange.cancel(tr.id, symbol, order.oid)
        d["status"] = "executed"

    async def _open(self, tr: TraderRuntime, n: int, d: dict[str, Any]) -> None:
        symbol, side = d["symbol"], d["side"]
        buy = side == "long"
        plan = {k: d[k] for k in ("profit_target", "stop_loss", "invalidation_condition") if k in d}
        res = await tr.exchange.place_order(tr.id, OrderRequest(
            symbol=symbol, side="buy" if buy else "sell", size=d["quantity"], order_type="market", tif="Ioc",
            cloid=cloid_for(tr.id, n, symbol, "open"), leverage=d["leverage"], confidence=d.get("confidence"),
            exit_plan=plan or None))
        if res.status not in ("filled", "partially_filled") or not res.filled_size:
            d.update(status="failed", reason=f"entry {res.status}: {res.error or 'no fill'}")
            return
        d.update(status="executed", oid=res.oid, fill_price=res.avg_price, filled_size=res.filled_size)
        exit_side = "sell" if buy else "buy"
        rp = tr.config.risk_params
        for kind, px, enabled in (("tp", d.get("profit_target"), rp.take_profit_enabled),
                                  ("sl", d.get("stop_loss"), rp.stop_loss_enabled)):
            if not enabled or px is None:
                continue
            trig = await tr.exchange.place_order(tr.id, OrderRequest(
                symbol=symbol, side=exit_side, size=res.filled_size, order_type="market", reduce_only=True,
                cloid=cloid_for(tr.id, n, symbol, kind), trigger=Trigger(kind=kind, trigger_px=px)))
            if trig.status == "rejected":
                d[f"{kind}_error"] = trig.error or "rejected"
            else:
                d[f"{kind}_oid"] = trig.oid


def _llm_call(trader_id: str, n: int, c: CallRecord) -> LlmCall:
    return LlmCall(trader_id=trader_id, cycle_number=n, attempt=c.attempt, model=c.model, ts_ms=c.ts_ms,
                   outcome=c.outcome, provider_model=c.provider_model, latency_ms=c.latency_ms,
                   prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens, cost_usd=c.cost_usd,
                   error=c.error)


def _count_calls(metrics: Any, trader_id: str, completion: Completion) -> None:
    """Tokens and dollars of the model calls of one cycle (retries included: each was paid for)."""
    prompt = sum(c.prompt_tokens or 0 for c in completion.calls)
    reply = sum(c.completion_tokens or 0 for c in completion.calls)
    cost = sum(c.cost_usd or 0.0 for c in completion.calls)
    if prompt:
        metrics.trader_tokens.labels(trader_id, "prompt").inc(prompt)
    if reply:
        metrics.trader_tokens.labels(trader_id, "completion").inc(reply)
    if cost:
        metrics.trader_cost_usd.labels(trader_id).inc(cost)


def _mark_invalid(completion: Completion, why: str) -> None:
    if completion.calls and completion.calls[-1].outcome in ("ok", "truncated"):
        last = completion.calls[-1]
        error = why if last.outcome == "ok" else f"{last.error}; {why}"
        completion.calls[-1] = CallRecord(last.attempt, last.model, last.provider_model, last.ts_ms, last.latency_ms,
                                          last.prompt_tokens, last.completion_tokens, last.cost_usd, "invalid_reply",
                                          error[:4000])


def msgspec_replace(ev: Any, **changes: Any) -> Any:
    import msgspec

    return msgspec.structs.replace(ev, **changes)
