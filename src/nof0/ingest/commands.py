"""``nof0 ingest FILE|-``, ``nof0 traders sync`` (and, through the importer, ``nof0 import DIR``): thin
commands over the ingestion service; cli.py hooks them in with one ``register``.

``nof0 ingest`` prints a summary (accepted, duplicates, rejected) and the first rejections, and exits
1 when anything was rejected (the rejected lines are in ``ingest_dead_letters``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any, BinaryIO

from nof0.ingest.report import IngestReport
from nof0.runtime import Runtime

__all__ = ["register", "print_report"]

_SHOWN = 20  # rejections printed; the rest are in the dead-letter table


def print_report(report: IngestReport) -> int:
    print(report.summary(), flush=True)
    for rejection in report.rejections[:_SHOWN]:
        print(f"rejected {rejection}", file=sys.stderr)
    if len(report.rejections) > _SHOWN:
        print(f"... and {len(report.rejections) - _SHOWN} more (see table ingest_dead_letters)", file=sys.stderr)
    return 0 if report.ok else 1


def _file_lines(f: BinaryIO) -> Iterator[bytes]:
    yield from f


async def _pipe_lines(f: BinaryIO) -> AsyncIterator[bytes]:
    """A live pipe read without blocking the event loop (batches flush while the producer is quiet)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), f)
    async for line in reader:
        yield line


def cmd_ingest(args: argparse.Namespace) -> int:
    from nof0.cli import _with_runtime
    from nof0.ingest.service import IngestService
    from nof0.jobs.scheduler import VIEW_EVENTS
    from nof0.jobs.views import refresh_views

    async def go(rt: Runtime) -> int:
        service = IngestService(rt)
        changed: set[str] = set()

        async def remember(types: set[str]) -> None:
            changed.update(types)

        service.on_committed.append(remember)
        status = await _ingest_input(service, args)
        # a one-off process has no scheduler to tell: refresh the views itself (design 2.3 "after ETL batches")
        if status != 2 and rt.config.root.jobs.refresh_after_ingest and changed & VIEW_EVENTS:
            await refresh_views(rt)
        return status

    return _with_runtime(args, go)


async def _ingest_input(service: Any, args: argparse.Namespace) -> int:
    """Ingest the file (or stdin) named on the command line; returns the exit status."""
    if args.file == "-":
        stdin = sys.stdin.buffer
        # a regular file redirected to stdin is read like a file; a pipe as a live stream
        lines = _file_lines(stdin) if stat.S_ISREG(os.fstat(stdin.fileno()).st_mode) else _pipe_lines(stdin)
        return print_report(await service.ingest_lines(lines, source=args.source or "stdin"))
    try:
        f = open(args.file, "rb")
    except OSError as exc:
        print(f"ingest: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    with f:
        return print_report(await service.ingest_lines(_file_lines(f), source=args.source or args.file))


def cmd_traders_sync(args: argparse.Namespace) -> int:
    from nof0.cli import _with_runtime
    from nof0.traders.sync import sync_traders

    async def go(rt: Runtime) -> int:
        report = await sync_traders(rt)
        print(f"traders: {len(rt.config.manager.traders)} in {rt.config.root.files.manager}")
        return print_report(report)

    return _with_runtime(args, go)


def register(sub: Any) -> None:
    p = sub.add_parser("ingest", help="ingest events from a JSON Lines file, or - for stdin (docs/events.md)")
    p.add_argument("file", help="JSON Lines file, or - to read stdin (a pipe is ingested as it arrives)")
    p.add_argument("--source", default=None, help="name recorded with dead letters (default: the file name)")
    p.set_defaults(fn=cmd_ingest)
    traders = sub.add_parser("traders", help="trader commands")
    tsub = traders.add_subparsers(dest="traders_command", required=True, metavar="TRADERS_COMMAND")
    tsub.add_parser("sync", help="load etc/manager.yaml's traders into models and trader_state").set_defaults(
        fn=cmd_traders_sync)
    from nof0.importer.commands import register as register_import  # the importer feeds this service

    register_import(sub)
