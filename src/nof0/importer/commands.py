"""``nof0 import DIR``: load a nof1 snapshot folder (see ``nof0.importer.snapshot``), then run the jobs
the load calls for (views, leaderboard and since-inception caches, analytics of the imported models).
Exit status 1 when an entry was rejected or a job failed after the load, 2 when a file is not a nof1
capture."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nof0.commands_runtime import with_runtime
from nof0.ingest.commands import finish_load
from nof0.runtime import Runtime

__all__ = ["register"]


def cmd_import(args: argparse.Namespace) -> int:
    from nof0.importer.snapshot import SnapshotError, import_snapshot

    async def go(rt: Runtime) -> int:
        try:
            report = await import_snapshot(rt, Path(args.directory))
        except SnapshotError as exc:
            print(f"import: {exc}", file=sys.stderr)
            return 2
        return await finish_load(rt, "import", report)

    return with_runtime(args, go)


def register(sub: Any) -> None:
    p = sub.add_parser("import", help="load a nof1 snapshot folder (trades.json, crypto-prices.json, ...) into the store")
    p.add_argument("directory", help="folder with nof1 API captures, e.g. tests/fixtures/nof1-2025-10-26")
    p.set_defaults(fn=cmd_import)
