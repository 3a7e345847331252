"""CLI of the API: ``nof0 serve [--host --port]`` and ``nof0 parity DIR`` (registered in cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

from nof0.commands_runtime import UsageError, with_runtime
from nof0.runtime import Runtime

__all__ = ["register"]


def cmd_serve(args: argparse.Namespace) -> int:
    from nof0.api.server import ApiStartError, api_address, serve_api

    async def go(rt: Runtime) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        host, port = api_address(rt, args.host, args.port)
        print(f"nof0 API on http://{host}:{port}/api; Ctrl-C to stop", flush=True)
        try:
            await serve_api(rt, stop, host=args.host, port=args.port)
        except ApiStartError as exc:
            print(f"nof0: {exc}", flush=True)
            return 1
        return 0

    _use_uvloop()
    return with_runtime(args, go)


def _use_uvloop() -> None:
    # uvloop (installed with uvicorn[standard]) roughly doubles small-response throughput
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the asyncio loop works too
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def cmd_parity(args: argparse.Namespace) -> int:
    from nof0.api.parity import format_report, run_parity

    directory = Path(args.dir)
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a folder (expected a nof1 snapshot folder)")

    async def go(rt: Runtime) -> int:
        reports = await run_parity(rt, directory)
        for line in format_report(reports, directory):
            print(line, flush=True)
        return 1 if not reports or any(r.failing for r in reports) else 0

    return with_runtime(args, go)


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve the arena API (nof1 wire format) until interrupted")
    serve.add_argument("--host", default=None, help="listen address (default api.host)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default api.port)")
    serve.set_defaults(fn=cmd_serve)

    parity = sub.add_parser("parity", help="compare file-backed and db-backed API answers for a nof1 snapshot")
    parity.add_argument("dir", help="a nof1 snapshot folder (crypto-prices.json, trades.json, ...)")
    parity.set_defaults(fn=cmd_parity)
