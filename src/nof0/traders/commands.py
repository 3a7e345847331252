"""``nof0 traders pause ID [--until T]``, ``nof0 traders resume ID`` and ``nof0 traders status``: act on
and show the state the manager honours (``trader_state``), from any process. A pause or a resume is a
``trader_state`` event through ``IngestService`` that writes ``pause_until`` alone, so it never
touches the cooldowns or the limits the running manager keeps; the manager reads it before each cycle.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from nof0.commands_runtime import with_runtime
from nof0.config import parse_duration
from nof0.conversations import repository as conv_repo
from nof0.kernel.events import TraderState
from nof0.llm_calls import repository as llm_repo
from nof0.runtime import Runtime
from nof0.timefmt import dt_to_s
from nof0.traders import repository as repo

__all__ = ["register", "parse_until", "FOREVER"]

FOREVER = datetime(2099, 12, 31, 23, 59, 59, tzinfo=timezone.utc)  # paused until resumed


def parse_until(text: str | None, now: datetime) -> datetime:
    """``--until``: a duration from now (``30m``, ``2h``) or an ISO 8601 time (UTC when no zone); none: forever."""
    if not text:
        return FOREVER
    try:
        return now + timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--until {text!r}: give a duration such as 30m or 2h, or a time such as "
                         "2025-10-26T12:00:00Z") from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _trader(rt: Runtime, trader_id: str):
    for t in rt.config.manager.traders:
        if t.id == trader_id:
            return t
    known = ", ".join(t.id for t in rt.config.manager.traders) or "none"
    raise ValueError(f"unknown trader {trader_id!r} ({rt.config.root.files.manager} traders: {known})")


async def _set_pause(rt: Runtime, trader_id: str, until: datetime | None) -> int:
    from nof0.ingest.service import IngestService
    from nof0.traders.sync import trader_events

    trader = _trader(rt, trader_id)
    svc = IngestService(rt)
    await svc.ingest_located([e for e in trader_events(rt.config) if e[1].__struct_config__.tag == "model"
                              and e[1].id == trader_id], source="traders")
    report = await svc.ingest([TraderState(trader_id=trader.id, exchange_provider=trader.exchange_provider,
                                           market_provider=trader.market_provider, pause_until=until)],
                              source="traders")
    for r in report.rejections:
        print(f"rejected: {r}")
    print(f"{trader_id}: " + (f"paused until {until.isoformat()}" if until else "resumed"))
    return 0 if report.ok else 1


async def trader_status(rt: Runtime) -> list[dict[str, Any]]:
    """One entry per configured trader: pause, last decision, next one, last cycle, cooldowns, budget."""
    ids = [t.id for t in rt.config.manager.traders]
    now_ms = rt.clock.now_ms()
    day = now_ms - now_ms % 86_400_000
    async with rt.pool.connection() as conn, conn.transaction():
        states = {r["trader_id"]: r for r in await repo.list_trader_states(conn, ids)}
        last = {r["model_id"]: r for r in await conv_repo.list_last_decisions(conn, ids)}
        usage = {i: await llm_repo.get_usage_since(conn, i, day) for i in ids}
    out = []
    for t in rt.config.manager.traders:
        st = states.get(t.id) or {}
        pause = dt_to_s(st.get("pause_until"))
        paused = pause is not None and pause * 1000 > now_ms
        last_s = dt_to_s(st.get("last_decision_at"))
        cycle = last.get(t.id)
        cooldowns = {s: c.get("until_ms") for s, c in ((st.get("cooldown") or {}).get("symbols") or {}).items()
                     if isinstance(c, dict) and (c.get("until_ms") or 0) > now_ms}
        out.append({
            "trader": t.id, "model": t.model, "auto_start": t.auto_start,
            "status": "paused" if paused else ("running" if st else "never started"),
            "pause_until": pause if paused else None, "last_decision_at": last_s,
            "next_decision_at": max(last_s + float(t.decision_interval), pause if paused else 0) if last_s else None,
            "last_cycle": cycle and {"number": cycle["cycle_number"], "success": cycle["success"],
                                     "error": cycle["error_message"]},
            "cooldowns_until_ms": cooldowns,
            "budget_today": {**usage[t.id], "daily_budget_usd": t.daily_budget_usd,
                             "daily_budget_tokens": t.daily_budget_tokens},
        })
    return out


def _usage_problem(args: argparse.Namespace) -> str | None:
    """Checked before any server starts; printed as one line with exit code 2."""
    ids = [t.id for t in args.config_obj.manager.traders]
    if args.trader_id not in ids:
        return (f"unknown trader {args.trader_id!r} ({args.config_obj.root.files.manager} traders:"
                f" {', '.join(ids) or 'none'})")
    if getattr(args, "until", None):
        try:
            parse_until(args.until, datetime.now(timezone.utc))
        except ValueError as exc:
            return str(exc)
    return None


def _refuse(args: argparse.Namespace, why: str) -> int:
    import sys

    print(f"nof0 traders {args.traders_command}: {why}", file=sys.stderr)
    return 2


def cmd_pause(args: argparse.Namespace) -> int:

    if why := _usage_problem(args):
        return _refuse(args, why)

    async def go(rt: Runtime) -> int:
        now = datetime.fromtimestamp(rt.clock.now_ms() / 1000, tz=timezone.utc)
        return await _set_pause(rt, args.trader_id, parse_until(args.until, now))

    return with_runtime(args, go)


def cmd_resume(args: argparse.Namespace) -> int:

    if why := _usage_problem(args):
        return _refuse(args, why)

    async def go(rt: Runtime) -> int:
        return await _set_pause(rt, args.trader_id, None)

    return with_runtime(args, go)


def cmd_status(args: argparse.Namespace) -> int:

    async def go(rt: Runtime) -> int:
        for entry in await trader_status(rt):
            print(json.dumps(entry, default=str))
        return 0

    return with_runtime(args, go)


def register(tsub: Any) -> None:
    p = tsub.add_parser("pause", help="pause a trader (until resumed, or --until 30m / an ISO time)")
    p.add_argument("trader_id")
    p.add_argument("--until", default=None)
    p.set_defaults(fn=cmd_pause)
    r = tsub.add_parser("resume", help="resume a paused trader")
    r.add_argument("trader_id")
    r.set_defaults(fn=cmd_resume)
    tsub.add_parser("status", help="each trader's pause, last and next decision, cooldowns, budget").set_defaults(
        fn=cmd_status)
