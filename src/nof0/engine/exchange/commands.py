"""``nof0 order``: an operator opens, adds to, reduces or closes a trader's position by hand (freqtrade's
force-enter / force-exit), through the trader's own exchange and the same engine path as the traders.

    nof0 order TRADER SYMBOL buy|sell|long|short SIZE [--leverage L] [--reduce-only] [--limit PX [--tif T]]
    nof0 order TRADER SYMBOL --close

The exchange is the trader's ``exchange_provider`` (manager.yaml). A sim trader's order is priced at the
mark of its ``market_provider``: with no feed in this process, the latest stored price (``price_latest``)
and the stored asset metadata (``market_assets``). After a change the jobs a one-off load runs follow
(``nof0.ingest.followup``), so the dashboard shows the trade at once. Exit status 0 when the order
filled or rests, 1 when the exchange refused it, 2 on bad usage or an exchange error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nof0.commands_runtime import with_runtime
from nof0.engine.exchange.provider import AccountState, ExchangeError, OrderRequest, OrderResult
from nof0.kernel.report import IngestReport
from nof0.runtime import Runtime

__all__ = ["register", "cmd_order", "format_result", "format_account"]

_SIDES = {"buy": "buy", "long": "buy", "sell": "sell", "short": "sell"}


def register(sub: Any) -> None:
    p = sub.add_parser("order", help="place or close a position on a trader's exchange by hand")
    p.add_argument("trader", help="trader id (etc/manager.yaml)")
    p.add_argument("symbol", help="e.g. BTC")
    p.add_argument("side", nargs="?", choices=sorted(_SIDES), help="buy/long or sell/short (not with --close)")
    p.add_argument("size", nargs="?", type=float, help="size in coins (not with --close)")
    p.add_argument("--leverage", type=float, default=None, help="set the symbol's leverage before the order")
    p.add_argument("--reduce-only", action="store_true", help="only reduce the open position")
    p.add_argument("--limit", type=float, default=None, metavar="PRICE", help="a limit order at PRICE (default: market)")
    p.add_argument("--tif", choices=("Gtc", "Ioc", "Alo"), default="Gtc", help="time in force of a limit order")
    p.add_argument("--cloid", default=None, help="client order id: the same id never places a second order")
    p.add_argument("--close", action="store_true", help="close the trader's whole position in SYMBOL")
    p.set_defaults(fn=cmd_order)


def cmd_order(args: argparse.Namespace) -> int:

    config = args.config_obj
    trader = next((t for t in config.manager.traders if t.id == args.trader), None)
    problem = None
    if trader is None:
        known = ", ".join(t.id for t in config.manager.traders) or "none"
        problem = f"unknown trader {args.trader!r} (manager.yaml traders: {known})"
    elif args.close:
        if args.side is not None or args.size is not None:
            problem = "--close takes no side or size: it closes the whole position"
    elif args.side is None or args.size is None:
        problem = "give a side (buy, sell, long, short) and a size, or --close"
    elif not args.size > 0:
        problem = f"size must be a positive number of coins, got {args.size:g}"
    if problem is not None:
        print(f"nof0 order: {problem}", file=sys.stderr, flush=True)
        return 2

    async def go(rt: Runtime) -> int:
        return await place_by_hand(rt, args, trader)

    return with_runtime(args, go)


async def place_by_hand(rt: Runtime, args: argparse.Namespace, trader: Any) -> int:
    from nof0.engine.exchange.factory import build_exchanges
    from nof0.engine.exchange.sim.exchange import SimExchange
    from nof0.engine.exchange.stored_market import market_from_store
    from nof0.ingest.followup import refresh_after_ingest

    service = _RecordingService(rt)
    market = await market_from_store(rt, trader.market_provider, [args.symbol])
    exchange = build_exchanges(rt, {trader.market_provider: market}, ingest=service)[trader.exchange_provider]
    try:
        if isinstance(exchange, SimExchange):
            mark = market.mark(args.symbol)
            if mark is not None:
                print(f"mark {args.symbol} {mark:g} (latest stored price, {trader.market_provider})", flush=True)
            await exchange.start(traders=[trader.id])
        else:
            await exchange.start()
        if args.close:
            result = await exchange.close_position(trader.id, args.symbol)
        else:
            limit = args.limit is not None
            result = await exchange.place_order(trader.id, OrderRequest(
                symbol=args.symbol, side=_SIDES[args.side], size=args.size, order_type="limit" if limit else "market",
                price=args.limit, tif=args.tif if limit else "Ioc", reduce_only=args.reduce_only,
                leverage=args.leverage, cloid=args.cloid))
        print(format_result(trader.id, args.symbol, result), flush=True)
        print(format_account(await exchange.account(trader.id)), flush=True)
    except ExchangeError as exc:
        print(f"nof0 order: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        await exchange.close()
    status = 0 if result.status in ("filled", "partially_filled", "resting") else 1
    if service.report.changed_types:
        followup = await refresh_after_ingest(rt, service.report)
        if not followup.ok:
            print(f"nof0 order: the order is stored, but {followup.failed}", file=sys.stderr, flush=True)
            status = max(status, 1)
    return status


def format_result(trader_id: str, symbol: str, r: OrderResult) -> str:
    if r.status in ("rejected", "canceled"):
        return f"{trader_id} {symbol}: {r.status}{f' (oid {r.oid})' if r.oid is not None else ''}: {r.error}"
    line = f"{trader_id} {symbol}: {r.status}, oid {r.oid}"
    if r.filled_size:
        line += f", {r.filled_size:g} at {r.avg_price:g}, fee {r.fee_usd:.6f} USD"
    return line


def format_account(a: AccountState) -> str:
    lines = [f"equity {a.equity_usd:.6f} USD, available {a.available_usd:.6f}, margin used {a.margin_used_usd:.6f}"]
    for p in a.positions:
        liq = f", liquidation {p.liquidation_price:g}" if p.liquidation_price is not None else ""
        lines.append(f"  {p.symbol} {p.side} {p.size:g} at {p.entry_price:g}, {p.leverage:g}x, margin"
                     f" {p.margin_usd:.6f}, unrealized {p.unrealized_pnl:.6f}{liq}")
    return "\n".join(lines)


class _RecordingService:
    """The process's IngestService, summing what each batch did (for the jobs a one-off load runs)."""

    def __init__(self, rt: Runtime) -> None:
        from nof0.ingest.service import IngestService

        self._service = IngestService(rt)
        self.report = IngestReport()

    async def ingest(self, events: Any, *, source: str = "api") -> IngestReport:
        report = await self._service.ingest(events, source=source)
        self.report.merge(report)
        return report
