"""The paper-trading exchange (engine.md "Exchange providers / sim"): one paper account per trader, the
rules of :mod:`~nof0.engine.exchange.sim.rules` / :mod:`~nof0.engine.exchange.sim.matching`, marks and
asset metadata from the trader's :class:`~nof0.engine.market.state.MarketState`.

Every change runs on a copy of the account; its events (orders, fills, balance) go through
``IngestService`` as one batch, and only once that batch committed does the copy become the account and
the call return: an order is acknowledged only when it is durable. A failed commit leaves the account
as it was and marks it for a reload from Postgres before its next use (the batch may have committed
after all). Marks arriving through ``MarketState.subscribe`` fill resting limits, fire triggers,
liquidate and settle funding on the tick the store learns.

One process owns a trader's paper account at a time: the first use takes a Postgres advisory lock held
by a connection of its own until :meth:`SimExchange.release` or :meth:`SimExchange.close` (or the
process's death, kill -9 included).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from nof0.config import ExchangeProvider
from nof0.engine.exchange.provider import (
    AccountState, ExchangeError, OpenOrder, OrderRequest, OrderResult, PositionState,
)
from nof0.engine.exchange.sim import matching
from nof0.engine.exchange.sim.matching import Journal, Market, Request
from nof0.engine.exchange.sim.rules import (
    Account, Fees, Order, available, liquidation_price, margin_used, unrealized_pnl,
)
from nof0.engine.exchange.sim.store import change_events, load_account
from nof0.engine.market.provider import Mids
from nof0.engine.market.state import MarketState
from nof0.kernel.events import SAFE_ID, SymbolEvent
from nof0.obs.logging import get_logger
from nof0.runtime import Runtime
from nof0.sim.repository import lock_paper_account, unlock_paper_account

__all__ = ["SimExchange"]

log = get_logger("nof0.engine.exchange.sim")

_ID = re.compile(SAFE_ID)
_STATUS = {"filled": "filled", "open": "resting", "canceled": "canceled", "rejected": "rejected"}
_LOCK_WAIT_S = 15.0  # a killed owner's connection takes a moment to be noticed by the server


@dataclass
class _Trader:
    account: Account
    by_cloid: dict[str, Order]
    capital: float
    market: str
    new: bool  # registers the model and opens the balance with its first commit


class SimExchange:
    """``SimExchange(rt, name, settings, markets)``; ``markets`` maps market provider names to states."""

    cycles_in_flight = 1000  # no venue to flood and every change is group-committed: a tick's cycles at once

    def __init__(self, rt: Runtime, name: str, settings: ExchangeProvider, markets: dict[str, MarketState], *,
                 ingest: Any | None = None) -> None:
        from nof0.ingest.service import IngestService  # the engine sits above the ingestion service

        self.rt, self.name, self.settings, self.markets = rt, name, settings, markets
        self.fees = Fees(settings.taker_fee_rate, settings.maker_fee_rate, settings.slippage_bps)
        self.service = ingest if ingest is not None else IngestService(rt)
        self._traders: dict[str, _Trader] = {}
        self._stale: set[str] = set()
        self._symbols: set[str] = set()  # registered through this exchange already
        self._locks: dict[str, asyncio.Lock] = {}  # one per trader: its changes happen one at a time
        self._load_lock = asyncio.Lock()
        self._queue: list[tuple[dict[str, tuple[Account, Journal]], asyncio.Future[None]]] = []
        self._flusher: asyncio.Future[None] | None = None
        self._owner: psycopg.AsyncConnection | None = None
        self._configured = {t.id: t for t in rt.config.manager.traders}
        self._subscribed = False
        self.lock_wait_s = _LOCK_WAIT_S  # shared engines wait less and retry from their next lease tick

    # ------------------------------------------------------------------------------------ lifecycle
    async def start(self, traders: Iterable[str] | None = None) -> None:
        """Subscribe to the markets and load the traders bound to this exchange (or ``traders``), so their
        resting orders and triggers work before their first call."""
        if not self._subscribed:
            for market_name, state in self.markets.items():
                state.subscribe(self._listener(market_name))
            self._subscribed = True
        wanted = list(traders) if traders is not None else [
            t.id for t in self.rt.config.manager.traders if t.exchange_provider == self.name]
        for trader_id in wanted:
            async with self._lock(trader_id):
                await self._trader(trader_id)

    async def release(self, trader_id: str) -> None:
        """Stop handling a trader's account and hand its lock over (its trader moved to another engine
        process, docs/scaling.md); the next use loads it again."""
        async with self._lock(trader_id):
            if self._traders.pop(trader_id, None) is None:
                return
            self._stale.discard(trader_id)
            async with self._load_lock:
                if self._owner is not None and not self._owner.closed:
                    await unlock_paper_account(self._owner, trader_id)

    async def close(self) -> None:
        if self._owner is not None:
            await self._owner.close()  # releases every trader's lock
            self._owner = None
        self._traders.clear()

    # ------------------------------------------------------------------------------------ orders
    async def place_order(self, trader_id: str, order: OrderRequest) -> OrderResult:
        if (problem := _invalid(order)) is not None:
            self.rt.metrics.sim_orders.labels(trader_id, "rejected").inc()
            return OrderResult(status="rejected", error=problem)
        async with self._lock(trader_id):
            tr = await self._trader(trader_id)
            if order.cloid is not None and (prev := tr.by_cloid.get(order.cloid)) is not None:
                return _result(prev)  # a retried request: the order it placed, never a second one
            market = self._market(tr, order.symbol)
            if isinstance(market, str):
                self.rt.metrics.sim_orders.labels(trader_id, "rejected").inc()
                return OrderResult(status="rejected", error=market)
            work, journal, ts = self._begin(tr.account)
            self._settle_funding(tr, work, ts, journal)
            placed = matching.place(work, _request(order), market, self.fees, ts, journal)
            await self._commit({trader_id: (work, journal)})
            self.rt.metrics.sim_orders.labels(trader_id, placed.status).inc()
            return _result(placed)

    async def cancel(self, trader_id: str, symbol: str, oid: int) -> bool:
        async with self._lock(trader_id):
            tr = await self._trader(trader_id)
            resting = tr.account.orders.get(oid)
            if resting is None or resting.symbol != symbol:
                return False
            work, journal, ts = self._begin(tr.account)
            matching.cancel(work, oid, journal)
            await self._commit({trader_id: (work, journal)})
            self.rt.metrics.sim_orders.labels(trader_id, "canceled").inc()
            return True

    async def update_leverage(self, trader_id: str, symbol: str, leverage: float, *, is_cross: bool = False) -> None:
        if is_cross:
            raise ExchangeError(f"sim {self.name}: cross margin is not simulated; positions are isolated")
        async with self._lock(trader_id):
            tr = await self._trader(trader_id)
            market = self._market(tr, symbol)
            if isinstance(market, str):
                raise ExchangeError(market)
            work, journal, ts = self._begin(tr.account)
            try:
                matching.set_leverage(work, market, leverage)
            except matching.LeverageError as exc:
                raise ExchangeError(f"sim {self.name}: {exc}") from None
            journal.changed = True
            await self._commit({trader_id: (work, journal)})

    async def close_position(self, trader_id: str, symbol: str) -> OrderResult:
        async with self._lock(trader_id):
            pos = (await self._trader(trader_id)).account.positions.get(symbol)
        if pos is None:
            return OrderResult(status="rejected", error=f"no open {symbol} position to close")
        side = "sell" if pos.size > 0 else "buy"
        return await self.place_order(trader_id, OrderRequest(symbol, side, abs(pos.size), reduce_only=True))

    # ------------------------------------------------------------------------------------ reads
    async def open_orders(self, trader_id: str) -> list[OpenOrder]:
        async with self._lock(trader_id):
            acct = (await self._trader(trader_id)).account
            return [OpenOrder(oid=o.oid, symbol=o.symbol, side=o.side, size=o.size - o.filled_size, price=o.price,
                              order_type=o.kind, reduce_only=o.reduce_only, ts_ms=o.ts_ms, trigger_px=o.trigger_px,
                              cloid=o.cloid) for _, o in sorted(acct.orders.items())]

    async def positions(self, trader_id: str) -> list[PositionState]:
        return (await self.account(trader_id)).positions

    async def account(self, trader_id: str) -> AccountState:
        async with self._lock(trader_id):
            tr = await self._trader(trader_id)
            acct = tr.account
            state = self.markets.get(tr.market)
            out, upnl = [], 0.0
            for symbol in sorted(acct.positions):
                pos = acct.positions[symbol]
                mark = state.mark(symbol) if state else None
                info = state.asset(symbol) if state else None
                pnl = unrealized_pnl(pos, mark) if mark is not None else 0.0
                upnl += pnl
                out.append(PositionState(
                    symbol=symbol, side=pos.side, size=abs(pos.size), entry_price=pos.entry_px, leverage=pos.leverage,
                    margin_usd=pos.margin, unrealized_pnl=pnl, mark_price=mark,
                    liquidation_price=liquidation_price(pos, info.max_leverage) if info else None,
                ))
            return AccountState(equity_usd=acct.cash + upnl, available_usd=max(0.0, available(acct)),
                                margin_used_usd=margin_used(acct), positions=out)

    # ------------------------------------------------------------------------------------ marks
    def _listener(self, market_name: str):
        async def on_mids(mids: Mids) -> None:
            try:
                await self.on_mids(market_name, mids)
            except Exception as exc:  # noqa: BLE001 - the feed must go on; the accounts reload on next use
                log.error("sim exchange could not process a mark update", exchange=self.name, market=market_name,
                          error=repr(exc))
        return on_mids

    async def on_mids(self, market_name: str, mids: Mids) -> None:
        """Resting limits, triggers, liquidations and funding of every loaded trader on this market, stored
        in one batch (each trader's lock held, taken in a fixed order)."""
        traders = sorted(t for t, tr in self._traders.items() if tr.market == market_name)
        async with contextlib.AsyncExitStack() as held:
            for trader_id in traders:
                await held.enter_async_context(self._lock(trader_id))
            changes: dict[str, tuple[Account, Journal]] = {}
            for trader_id in traders:
                tr = await self._trader(trader_id)
                acct = tr.account
                symbols = sorted(({p for p in acct.positions} | {o.symbol for o in acct.orders.values()})
                                 & set(mids.prices))
                ts = self._now(acct)
                if not symbols and not self._funding_due(acct, ts):
                    continue
                work, journal, ts = self._begin(acct)
                self._settle_funding(tr, work, ts, journal)
                for symbol in symbols:
                    market = self._market(tr, symbol)
                    if not isinstance(market, str):
                        matching.on_mark(work, market, self.fees, ts, journal)
                if journal.changed or journal.fills:
                    changes[trader_id] = (work, journal)
            if changes:
                await self._commit(changes)

    # ------------------------------------------------------------------------------------ internals
    def _now(self, acct: Account) -> int:
        return max(self.rt.clock.now_ms(), acct.ts_ms)  # an account's states never go back in time

    def _begin(self, acct: Account) -> tuple[Account, Journal, int]:
        """A working copy of the account at the present time, and an empty journal."""
        ts = self._now(acct)
        work = acct.copy()
        work.ts_ms = ts
        return work, Journal(), ts

    @staticmethod
    def _funding_due(acct: Account, ts: int) -> bool:
        from nof0.engine.exchange.sim.rules import HOUR_MS

        return acct.funding_ms == 0 or ts // HOUR_MS > acct.funding_ms // HOUR_MS

    def _settle_funding(self, tr: _Trader, work: Account, ts: int, journal: Journal) -> None:
        if not self._funding_due(work, ts):
            return
        markets = {}
        for symbol in work.positions:
            market = self._market(tr, symbol)
            if not isinstance(market, str):
                markets[symbol] = market
        matching.settle_funding(work, markets, ts, journal)

    def _market(self, tr: _Trader, symbol: str) -> Market | str:
        """The rules' view of a symbol, or why there is none."""
        state = self.markets.get(tr.market)
        if state is None:
            return f"sim {self.name}: no market state for provider {tr.market!r} (known: {', '.join(sorted(self.markets)) or 'none'})"
        info = state.asset(symbol)
        if info is None:
            return f"unknown asset {symbol!r}: market provider {tr.market!r} has no metadata for it"
        if info.is_delisted:
            return f"asset {symbol!r} is delisted"
        ctx = state.context(symbol)
        return Market(symbol, state.mark(symbol), info.sz_decimals, info.max_leverage, ctx.funding if ctx else None)

    def _lock(self, trader_id: str) -> asyncio.Lock:
        lock = self._locks.get(trader_id)
        if lock is None:
            lock = self._locks[trader_id] = asyncio.Lock()
        return lock

    async def _trader(self, trader_id: str) -> _Trader:
        """The trader's account, loaded (or reloaded after a failed commit) from Postgres; the caller holds
        the trader's lock."""
        tr = self._traders.get(trader_id)
        if tr is not None and trader_id not in self._stale:
            return tr
        if not _ID.match(trader_id):
            raise ExchangeError(f"sim {self.name}: {trader_id!r} is not a trader id")
        async with self._load_lock:  # one owner connection: its lock statements one at a time
            await self._own(trader_id)
        cfg = self._configured.get(trader_id)
        capital = cfg.starting_capital_usd if cfg is not None else self.settings.initial_balance_usd
        market = cfg.market_provider if cfg is not None else self.rt.config.market.default
        async with self.rt.pool.connection() as conn, conn.transaction():
            loaded = await load_account(conn, trader_id, capital)
        tr = _Trader(loaded.account, loaded.by_cloid, capital, market, loaded.new)
        self._traders[trader_id] = tr
        self._stale.discard(trader_id)
        return tr

    async def _own(self, trader_id: str) -> None:
        if trader_id in self._traders:
            return  # a reload of an account this process owns already
        if self._owner is None or self._owner.closed:
            # a connection of its own, outside the pool: the account locks live as long as it does
            self._owner = await psycopg.AsyncConnection.connect(self.rt.servers.postgres_dsn, autocommit=True)
        try:
            await lock_paper_account(self._owner, trader_id, wait_s=self.lock_wait_s)
        except psycopg.errors.LockNotAvailable:
            raise ExchangeError(f"sim {self.name}: trader {trader_id!r}'s paper account is in use by another process"
                                " (stop it, or place the order there)") from None

    async def _commit(self, changes: dict[str, tuple[Account, Journal]]) -> None:
        """Persist the changed accounts; they replace the live ones only once their batch committed.

        Group commit: changes submitted while a batch is being written wait and go together in the
        next one (one transaction for all of them), so traders acting at once share the round trips.
        The caller holds the traders' locks, so no account is in two pending changes."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((changes, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        await future

    async def _flush(self) -> None:
        while self._queue:
            pending, self._queue = self._queue, []
            try:
                await self._write(pending)
            except BaseException as exc:  # noqa: BLE001 - every waiter learns; none is left hanging
                for changes, future in pending:
                    self._stale.update(changes)
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, ExchangeError) else ExchangeError(
                            f"sim {self.name}: the change could not be stored, so it was not made"
                            f" ({type(exc).__name__}: {exc})"))
                if not isinstance(exc, Exception):
                    raise

    async def _write(self, pending: list[tuple[dict[str, tuple[Account, Journal]], asyncio.Future[None]]]) -> None:
        events: list[Any] = []
        owners: list[str | None] = []  # the trader each event is a change of (None: shared registrations)
        symbols: set[str] = set()
        for changes, _ in pending:
            for trader_id, (work, journal) in changes.items():
                tr = self._traders[trader_id]
                work.seq += 1  # every stored state gets a newer version than the last
                for symbol in sorted({o.symbol for o in journal.orders.values()} - self._symbols - symbols):
                    events.append(SymbolEvent(symbol=symbol))
                    symbols.add(symbol)
                changed = change_events(work, journal, work.ts_ms, marks=self._marks(tr), capital=tr.capital,
                                        register=tr.new)
                owners += [None] * (len(events) - len(owners)) + [trader_id] * len(changed)
                events += changed
        report = await self.service.ingest(events, source=f"exchange:{self.name}")
        refused = {_owner(r.where, owners) for r in report.rejections}
        if None in refused:
            raise ExchangeError(f"sim {self.name}: the store refused the change: {report.rejections[0]}")
        self._symbols |= symbols
        m = self.rt.metrics
        for changes, future in pending:
            if refused & set(changes):
                # e.g. a stale fencing token: this trader's change was not stored (the others' were)
                self._stale.update(changes)
                why = next(r for r in report.rejections if _owner(r.where, owners) in changes)
                if not future.done():
                    future.set_exception(ExchangeError(f"sim {self.name}: the store refused the change: {why}"))
                continue
            for trader_id, (work, journal) in changes.items():
                tr = self._traders[trader_id]
                tr.account, tr.new = work, False
                for fill in journal.fills:
                    m.sim_fills.labels(trader_id, fill.symbol).inc()
                    if fill.liquidation is not None:
                        m.sim_liquidations.labels(trader_id, fill.symbol).inc()
                for order in journal.orders.values():
                    if order.cloid is not None:
                        tr.by_cloid[order.cloid] = order
            if not future.done():
                future.set_result(None)

    def _marks(self, tr: _Trader) -> dict[str, float]:
        state = self.markets.get(tr.market)
        return dict(state.marks) if state is not None else {}


def _owner(where: str | None, owners: list[str | None]) -> str | None:
    """The trader whose change a rejection (named ``event N`` by the ingestion service) is about."""
    head, _, n = (where or "").partition(" ")
    return owners[int(n) - 1] if head == "event" and n.isdigit() and 0 < int(n) <= len(owners) else None


# ---------------------------------------------------------------------------------------- requests


def _invalid(order: OrderRequest) -> str | None:
    """Why a request cannot be an order at all (never persisted), or None."""
    if not isinstance(order.symbol, str) or not _ID.match(order.symbol):
        return f"symbol={order.symbol!r}: not a symbol"
    if order.side not in ("buy", "sell"):
        return f"side={order.side!r}: must be buy or sell"
    if not (isinstance(order.size, (int, float)) and math.isfinite(order.size) and order.size > 0):
        return f"size={order.size!r}: must be a positive number of coins"
    if order.order_type not in ("market", "limit"):
        return f"order_type={order.order_type!r}: must be market or limit"
    if order.tif not in ("Ioc", "Gtc", "Alo"):
        return f"tif={order.tif!r}: must be Ioc, Gtc or Alo"
    for name in ("price", "leverage"):
        v = getattr(order, name)
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            return f"{name}={v!r}: must be a positive number"
    if order.trigger is not None:
        t = order.trigger
        if t.kind not in ("tp", "sl"):
            return f"trigger.kind={t.kind!r}: must be tp or sl"
        for name, v in (("trigger_px", t.trigger_px), ("limit_px", t.limit_px)):
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                return f"trigger.{name}={v!r}: must be a positive number"
        if not t.is_market and t.limit_px is None and order.price is None:
            return "trigger.limit_px: a limit trigger needs a limit price"
    if order.cloid is not None and not (isinstance(order.cloid, str) and 0 < len(order.cloid) <= 128):
        return f"cloid={order.cloid!r}: must be 1-128 characters"
    return None


def _request(order: OrderRequest) -> Request:
    if order.trigger is not None:
        t = order.trigger
        return Request(order.symbol, order.side, order.size, "take_profit" if t.kind == "tp" else "stop",
                       tif="Gtc", price=None if t.is_market else (t.limit_px or order.price), trigger_px=t.trigger_px,
                       trigger_market=t.is_market, reduce_only=order.reduce_only, leverage=order.leverage,
                       cloid=order.cloid, confidence=order.confidence, exit_plan=order.exit_plan)
    return Request(order.symbol, order.side, order.size, order.order_type, tif=order.tif, price=order.price,
                   reduce_only=order.reduce_only, leverage=order.leverage, cloid=order.cloid,
                   confidence=order.confidence, exit_plan=order.exit_plan)


def _result(o: Order) -> OrderResult:
    return OrderResult(status=_STATUS[o.status], oid=o.oid, filled_size=o.filled_size, avg_price=o.avg_px,  # type: ignore[arg-type]
                       fee_usd=o.fee_usd, error=o.reason if o.status in ("rejected", "canceled") else None)
