"""The manager (engine.md "Manager"): runs every ``auto_start`` trader of etc/manager.yaml at its
``decision_interval`` under the runtime's clock.

At start it registers the traders (the ``nof0 traders sync`` events), reads back each trader's state
(pause, cooldowns, last decision) and its journal (the cycle numbering continues, a cycle a crash left
pending is finished), reconciles the positions the venue holds with those in Postgres (differences are
logged and kept in ``trader_state.risk_guards.reconciliation``), and computes the limits from the asset
metadata (again whenever it changes: design 2.4 Market Metadata step 3).

Before each cycle the trader's pause is read from ``trader_state`` (``nof0 traders pause`` writes it
from another process). A trader whose model is unavailable (no API key, budget spent), whose
configuration is wrong or whose cycle raises is reported in :meth:`Manager.status` and skipped; the
process goes on.

With ``leases`` (engine processes sharing the traders, docs/scaling.md) the manager runs only the
traders whose lease it holds: between cycles it takes its share (each one started as above, after its
fencing token was raised in Postgres, so the previous holder's late writes either landed before the
journal is read or are refused) and drops the traders it lost or handed over; a task of its own renews
the leases while cycles run. Every write for a held trader goes through ``ingest`` with its token
(``IngestService.fences``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from nof0.config import TraderConfig
from nof0.conversations import repository as conv_repo
from nof0.engine.exchange.provider import Exchange
from nof0.engine.leases import LeaseLost, LeaseTable
from nof0.engine.llm.client import LLMClient
from nof0.engine.market.state import MarketState
from nof0.engine.strategies import StrategyError
from nof0.engine.traders.context_builder import CandleSource, ContextBuilder, limits_for
from nof0.engine.traders.executor import CycleResult, Executor
from nof0.engine.traders.models import model_for
from nof0.engine.traders.prompts import PromptError, load_template
from nof0.engine.traders.runtime_state import TraderRuntime, dt_to_ms
from nof0.ingest.service import IngestService
from nof0.obs.logging import get_logger, log_scope
from nof0.runtime import Runtime
from nof0.trades import repository as trades_repo
from nof0.traders import repository as traders_repo
from nof0.traders.sync import risk_guards, trader_events

__all__ = ["Manager"]

log = get_logger("nof0.engine.manager")

# strategy cycles in flight at once per exchange: a venue's calls are its own round trips (and its rate
# limits), so 8; an exchange that sets ``cycles_in_flight`` (the sim: its changes are group-committed, as
# the journal's are in traders.grouped) runs a tick's cycles all together
_STRATEGY_CONCURRENCY = 8


class Manager:
    def __init__(self, rt: Runtime, *, exchanges: dict[str, Exchange], markets: dict[str, MarketState],
                 candles: dict[str, CandleSource] | None = None, ingest: IngestService | None = None,
                 llm: LLMClient | None = None, run_id: str | None = None, leases: LeaseTable | None = None) -> None:
        self.rt = rt
        self.exchanges = exchanges
        self.markets = markets
        self.ingest = ingest or IngestService(rt, linger_s=0)
        self.llm = llm or LLMClient(rt.config.llm, rt.clock)
        self.run_id = run_id or str(uuid.uuid4())
        self.builder = ContextBuilder(rt, rt.config.executor, candles or {})
        self.executor = Executor(rt, self.ingest, self.builder, rt.config.executor, self.run_id)
        self.traders: dict[str, TraderRuntime] = {}
        self.problems: dict[str, str] = {}  # trader id -> why it does not run at all
        self._retry_at: dict[str, int] = {}
        self._llm_slots = asyncio.Semaphore(rt.config.executor.max_concurrent_decisions)
        self._strategy_slots = {name: asyncio.Semaphore(getattr(ex, "cycles_in_flight", _STRATEGY_CONCURRENCY))
                                for name, ex in exchanges.items()}
        self.results: list[CycleResult] = []  # the latest run_due's results (tests, bench)
        self.leases = leases
        self.fences = self.ingest.fences  # trader id -> the fencing token its writes carry
        self._lost: set[str] = set()  # leases whose renewal failed: dropped before the next cycles
        self.waiting: dict[str, str] = {}  # held traders whose start failed (e.g. their account still locked)
        self._balanced_ms: int | None = None

    # ------------------------------------------------------------------ start
    async def start(self) -> None:
        cfg = self.rt.config
        wanted = [t for t in cfg.manager.traders if t.auto_start]
        if not wanted:
            return
        await self.ingest.ingest_located([e for e in trader_events(cfg) if e[1].__struct_config__.tag == "model"
                                          or getattr(e[1], "trader_id", None) in {t.id for t in wanted}],
                                         source="manager")
        if self.leases is None:
            await self._adopt({t.id: None for t in wanted})
        else:
            await self.rebalance()
        log.info("manager started", traders=sorted(self.traders), problems=self.problems, run_id=self.run_id)

    async def rebalance(self) -> None:
        """Between cycles: drop the traders whose lease was lost or is handed over, start those gained."""
        if self.leases is None:
            return
        if self._lost:
            await self._drop(sorted(self._lost))
        changes = await self.leases.tick(drop=self._drop)
        self._balanced_ms = self.rt.clock.now_ms()
        retry = {t: self.leases.held[t] for t in self.waiting if t in self.leases.held}
        self.waiting.clear()
        if changes.gained or retry:
            await self._adopt(retry | dict(changes.gained))

    async def _adopt(self, tokens: dict[str, int | None]) -> None:
        """Start the given traders (token None: unfenced, the single-process engine): their state, their
        journal, the venue's positions, their limits."""
        cfg = self.rt.config
        by_id = {t.id: t for t in cfg.manager.traders}
        ids = sorted(tokens)
        fenced = {t: tok for t, tok in tokens.items() if tok is not None}
        async with self.rt.pool.connection() as conn, conn.transaction():
            # the token first: a late write of the previous holder commits before the reads below see the
            # journal, or waits for this row lock and is refused
            stored = await traders_repo.advance_fences(conn, fenced) if fenced else {}
            states = {r["trader_id"]: r for r in await traders_repo.list_trader_states(conn, ids)}
            stats = await conv_repo.get_cycle_stats(conn, ids)
            last = {r["model_id"]: r for r in await conv_repo.list_last_decisions(conn, ids)}
        behind = {t: stored[t] for t in fenced if stored[t] > fenced[t]}
        if behind and self.leases is not None:
            # Postgres has seen a higher token than Redis hands out (Redis lost its counters): take one above it
            retry = {t: tok for t in behind if (tok := await self.leases.refence(t, behind[t])) is not None}
            log.warning("fencing tokens behind the store's; taken again above them", traders=sorted(behind))
            if retry:
                await self._adopt(retry)
            ids = [t for t in ids if t not in behind]
        base = cfg.path.parent
        for trader_id in ids:
            trader = by_id[trader_id]
            tr = self._runtime(trader, base)
            if tr is None:
                continue
            if tokens[trader_id] is not None:
                self.fences[trader_id] = tokens[trader_id]
            state = states.get(trader.id) or {}
            tr.pause_until_ms = dt_to_ms(state.get("pause_until"))
            tr.last_decision_ms = dt_to_ms(state.get("last_decision_at"))
            tr.load_cooldown(state.get("cooldown"))
            st = stats.get(trader.id)
            if st:
                tr.next_cycle = st["last_cycle"] + 1
                tr.invocations = st["cycles"]
                tr.started_ms = dt_to_ms(st["first_at"]) or 0
                cycle_ms = dt_to_ms(last[trader.id]["executed_at"]) if trader.id in last else None
                tr.last_decision_ms = max(filter(None, (tr.last_decision_ms, cycle_ms)), default=None)
            self.traders[trader.id] = tr
            try:
                reconciliation = await self._reconcile(tr)
                if trader.id in last:
                    await self.executor.resume(tr, last[trader.id])
                await self._write_limits(tr, reconciliation=reconciliation)
                tr.status = "running"
            except Exception as exc:  # noqa: BLE001 - one trader's venue must not stop the others
                tr.status, tr.reason = "error", f"start failed: {exc!r}"
                log.error("trader start failed", trader=trader.id, error=repr(exc))
                if self.leases is not None:  # keep the lease, start it again at the next rebalance
                    await self._drop([trader.id])
                    self.waiting[trader.id] = tr.reason
        if self.leases is not None and ids:
            log.info("traders taken over", traders=ids, tokens={t: tokens[t] for t in ids})

    async def _drop(self, names: list[str]) -> None:
        """Stop running these traders here (between cycles): another process holds or takes them. Their
        tokens stay in ``fences``, so a write still naming one of them is refused once the new holder wrote."""
        for name in names:
            self._lost.discard(name)
            self.waiting.pop(name, None)
            self._retry_at.pop(name, None)
            tr = self.traders.pop(name, None)
            release = getattr(tr.exchange, "release", None) if tr is not None else None
            if release is not None:  # the sim: its paper account and the account's lock go with the trader
                await release(name)
        if names:
            log.info("traders handed over", traders=names)

    def _runtime(self, trader: TraderConfig, base: Path) -> TraderRuntime | None:
        exchange = self.exchanges.get(trader.exchange_provider)
        market = self.markets.get(trader.market_provider)
        problem = None
        if exchange is None:
            problem = f"exchange provider {trader.exchange_provider!r} is not running in this process"
        elif market is None:
            problem = f"market provider {trader.market_provider!r} is not running in this process"
        model = template = None
        if problem is None:
            try:
                model = model_for(trader, self.rt.config.llm.default_model, self.llm, self.rt.pool)
                template = load_template(base / trader.prompt_template) if trader.prompt_template else None
                if template is None:
                    problem = "no prompt_template configured"
            except (StrategyError, PromptError) as exc:
                problem = str(exc)
        if problem is not None:
            self.problems[trader.id] = problem
            log.error("trader not started", trader=trader.id, reason=problem)
            return None
        return TraderRuntime(config=trader, exchange=exchange, market=market, model=model, template=template,
                             limits=limits_for(trader, self.rt.config.executor, market),
                             limits_assets=_assets(trader, self.rt.config.executor, market))

    async def _reconcile(self, tr: TraderRuntime) -> dict[str, Any]:
        """The venue's positions against the store's; the differences are logged and returned."""
        venue = {p.symbol: p for p in await tr.exchange.positions(tr.id)}
        async with self.rt.pool.connection() as conn, conn.transaction():
            stored = {r["symbol"]: r for r in await trades_repo.list_open_positions(conn, [tr.id])}
        diffs = []
        for symbol in sorted(set(venue) | set(stored)):
            v, s = venue.get(symbol), stored.get(symbol)
            if v is None:
                diffs.append({"symbol": symbol, "store": f"{s['side']} {s['quantity']:g}", "venue": "none"})
            elif s is None:
                diffs.append({"symbol": symbol, "store": "none", "venue": f"{v.side} {v.size:g}"})
            elif v.side != s["side"] or abs(v.size - s["quantity"]) > 1e-9 * max(1.0, v.size):
                diffs.append({"symbol": symbol, "store": f"{s['side']} {s['quantity']:g}", "venue": f"{v.side} {v.size:g}"})
        if diffs:
            log.warning("positions differ between the venue and the store", trader=tr.id, differences=diffs)
        return {"at_ms": self.rt.clock.now_ms(), "differences": diffs}

    async def _write_limits(self, tr: TraderRuntime, **extra: Any) -> None:
        guards = risk_guards(tr.config, leverage_caps=tr.limits.leverage_caps, **extra)
        await self.ingest.ingest([tr.state_event(risk_guards=guards, allocation_pct=tr.config.allocation_pct,
                                                 cooldown=tr.cooldown_json())], source=f"trader:{tr.id}")

    # ------------------------------------------------------------------ cycles
    async def run_due(self, now_ms: int | None = None) -> list[CycleResult]:
        """Run one cycle of every trader that is due at ``now_ms`` (default: the clock's now)."""
        now = self.rt.clock.now_ms() if now_ms is None else now_ms
        due = [tr for tr in self.traders.values()
               if tr.status != "error" and tr.due_ms() <= now and self._retry_at.get(tr.id, 0) <= now]
        if not due:
            self.results = []
            return []
        async with self.rt.pool.connection() as conn, conn.transaction():
            states = {r["trader_id"]: r for r in await traders_repo.list_trader_states(conn, [t.id for t in due])}
        runnable = []
        for tr in due:
            tr.pause_until_ms = dt_to_ms((states.get(tr.id) or {}).get("pause_until"))
            if tr.pause_until_ms is not None and tr.pause_until_ms > now:
                tr.status, tr.reason = "paused", None
                continue
            runnable.append(tr)
        results = await asyncio.gather(*(self._one(tr, now) for tr in runnable))
        self.results = [r for r in results if r is not None]
        return self.results

    async def _one(self, tr: TraderRuntime, now: int) -> CycleResult | None:
        # every line of the cycle (context, model, guards, orders, its ingest batches) names the trader
        with log_scope(model=tr.id, source_event="decision_cycle", source=f"trader:{tr.id}"):
            return await self._cycle(tr, now)

    async def _cycle(self, tr: TraderRuntime, now: int) -> CycleResult | None:
        tr.last_lateness_ms = max(0, now - tr.due_ms()) if tr.last_decision_ms is not None else 0
        slots = self._llm_slots if tr.model.is_llm else self._strategy_slots[tr.config.exchange_provider]
        metrics = self.rt.metrics
        try:
            async with slots:
                assets = _assets(tr.config, self.rt.config.executor, tr.market)
                if assets != tr.limits_assets:
                    tr.limits = limits_for(tr.config, self.rt.config.executor, tr.market)
                    tr.limits_assets = assets
                    await self._write_limits(tr)
                    log.info("limits recomputed after an asset metadata change", trader=tr.id,
                             leverage_caps=tr.limits.leverage_caps)
                result = await self.executor.run_cycle(tr, now)
        except LeaseLost as exc:  # its writes were refused: another process runs it now
            self._lost.add(tr.id)
            log.warning("trader's lease lost during a cycle", trader=tr.id, error=str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - a failing trader is reported, the manager goes on
            tr.status, tr.reason = "error-retrying", f"{type(exc).__name__}: {exc}"
            self._retry_at[tr.id] = now + int(tr.config.decision_interval * 1000)
            metrics.trader_errors.labels(tr.id, "cycle").inc()
            log.error("trader cycle raised", trader=tr.id, error=repr(exc))
            return None
        if result.cycle_number is None:
            tr.status, tr.reason = "unavailable", result.error
            self._retry_at[tr.id] = now + int(tr.config.decision_interval * 1000)
            metrics.trader_cycles.labels(tr.id, "skipped").inc()
            log.warning("trader skipped: model unavailable", trader=tr.id, reason=result.error)
            return result
        tr.status, tr.reason = "running", result.error
        metrics.trader_cycles.labels(tr.id, "ok" if result.success else "failed").inc()
        for d in result.decisions:
            if d.get("status") == "rejected":
                metrics.trader_guard_rejections.labels(tr.id, _guard_name(d.get("reason", ""))).inc()
        if result.model_ms and tr.model.is_llm:
            metrics.trader_model_seconds.labels(tr.id, tr.model.name).observe(result.model_ms / 1000)
        return result

    async def run(self, stop: asyncio.Event) -> None:
        """Cycles until ``stop``: wakes at the next trader's due time (at most a second later); with leases,
        rebalances every third of the lease TTL (at once after a lost lease) while a task renews them."""
        renewer = asyncio.create_task(self.renew_leases(stop), name="leases") if self.leases is not None else None
        every_ms = self.leases.ttl_ms // 3 if self.leases is not None else 0
        try:
            while not stop.is_set():
                started = time.perf_counter()
                if self.leases is not None and (self._lost or self._balanced_ms is None
                                                or self.rt.clock.now_ms() - self._balanced_ms >= every_ms):
                    try:
                        await self.rebalance()
                    except Exception as exc:  # noqa: BLE001 - Redis away: keep the traders held, fenced in Postgres
                        self._balanced_ms = self.rt.clock.now_ms()
                        log.error("lease rebalance failed", error=repr(exc))
                try:
                    await self.run_due()
                except Exception as exc:  # noqa: BLE001 - e.g. Postgres away for a moment: try again
                    log.error("manager tick failed", error=repr(exc))
                now = self.rt.clock.now_ms()
                upcoming = [max(tr.due_ms(), self._retry_at.get(tr.id, 0)) for tr in self.traders.values()
                            if tr.status != "error"]
                wait_s = min([1.0] + [max(0.0, (t - now) / 1000) for t in upcoming])
                if time.perf_counter() - started > 1.0:
                    wait_s = 0.0
                try:
                    await asyncio.wait_for(stop.wait(), timeout=max(0.01, wait_s))
                except asyncio.TimeoutError:
                    pass
        finally:
            if renewer is not None:
                renewer.cancel()
                await asyncio.gather(renewer, return_exceptions=True)
            if self.leases is not None:  # a clean stop hands the traders over now, not after the TTL
                try:
                    await self._drop(sorted(self.traders))
                    await self.leases.release_all()
                except Exception as exc:  # noqa: BLE001 - Redis away: the leases lapse after their TTL
                    log.warning("leases not released at stop", error=repr(exc))
            await self.llm.close()

    async def renew_leases(self, stop: asyncio.Event) -> None:
        """Renew the leases every third of their TTL, however long a cycle takes."""
        assert self.leases is not None
        while not stop.is_set():
            try:
                self._lost.update(await self.leases.renew())
            except Exception as exc:  # noqa: BLE001 - Redis away: the leases lapse, the fence protects the store
                log.error("lease renewal failed", error=repr(exc))
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.leases.ttl_ms / 3000)
            except asyncio.TimeoutError:
                pass

    def status(self) -> list[dict[str, Any]]:
        out = []
        for tr in self.traders.values():
            out.append({"trader": tr.id, "status": tr.status, "reason": tr.reason, "model": tr.model.name,
                        "next_cycle": tr.next_cycle, "last_decision_ms": tr.last_decision_ms,
                        "fencing_token": self.fences.get(tr.id),
                        "pause_until_ms": tr.pause_until_ms, "cooldowns": tr.active_cooldowns(self.rt.clock.now_ms())})
        out += [{"trader": t, "status": "not started", "reason": why} for t, why in sorted(self.problems.items())]
        out += [{"trader": t, "status": "starting", "reason": why} for t, why in sorted(self.waiting.items())]
        return out


def _assets(trader: TraderConfig, executor, market: MarketState) -> dict[str, Any]:
    return {s: market.asset(s) for s in (trader.allowed_symbols or executor.allowed_symbols)}


def _guard_name(reason: str) -> str:
    for word in ("allowed", "market data", "pyramiding", "cooldown", "max_positions", "confidence", "quantity",
                 "leverage", "stop_loss", "profit_target", "reward/risk", "liquidity", "open interest",
                 "position size", "margin", "no open"):
        if word in reason:
            return word.replace(" ", "_").replace("/", "_")
    return "other"
