"""``nof0 feed [--provider NAME ...]``: the market feeds alone, until interrupted (registered in cli.py).

Without ``--provider`` it runs the feeds ``nof0 run`` would run (every market provider a trader uses, or
market.yaml's ``default`` when no trader names one). On SIGINT/SIGTERM it writes what is buffered, prints
what each feed wrote and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from nof0.commands_runtime import UsageError, with_runtime
from nof0.runtime import Runtime

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("feed", help="run the market feeds (prices and venue metadata into Postgres and Redis)")
    p.add_argument("--provider", action="append", dest="providers", metavar="NAME",
                   help="a market.yaml provider (repeatable); default: those the traders use")
    p.set_defaults(fn=cmd_feed)


def cmd_feed(args: argparse.Namespace) -> int:
    from nof0.engine.runner import Engine, markets_in_use, run_engine

    config = args.config_obj
    known = config.market.providers
    names = args.providers or markets_in_use(config) or ([config.market.default] if config.market.default else [])
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown market provider {', '.join(map(repr, unknown))} (market.yaml has: "
                         f"{', '.join(sorted(known)) or 'none'})")
    if not names:
        raise UsageError("no market provider to run: name one with --provider")

    async def go(rt: Runtime) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        engine = Engine(rt, markets=names)
        print(f"nof0 feed: {', '.join(f'{n} ({known[n].type})' for n in names)}; Ctrl-C to stop", flush=True)
        await run_engine(engine, stop, feeds_only=True)
        for name, feed in engine.feeds.items():
            s = feed.stats
            print(f"{name}: {s.ticks_written} ticks in {s.batches} batches, {s.snapshots_written} snapshots"
                  f"{f', {s.ticks_dropped} ticks dropped' if s.ticks_dropped else ''}", flush=True)
        return 0

    _use_uvloop()
    return with_runtime(args, go)


def _use_uvloop() -> None:
    # uvloop (installed with uvicorn[standard]) shortens every socket round trip of the feed's hot path
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the asyncio loop works too
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
