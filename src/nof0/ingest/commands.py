"""``nof0 ingest FILE|-``, ``nof0 traders sync`` (and, through the importer, ``nof0 import DIR``): thin
commands over the ingestion service; cli.py hooks them in with one ``register``.

``nof0 ingest`` (and ``nof0 traders sync``, ``nof0 import``) prints a summary (accepted, duplicates,
rejected) and the first rejections, then runs the jobs the load calls for (``nof0.ingest.followup``:
views, leaderboard and since-inception caches, analytics of the models it touched). Exit status 1 when anything was rejected (the rejected lines are in
``ingest_dead_letters``) or a job failed after the load was committed; 2 when the input cannot be read.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from typing import Any

from nof0.commands_runtime import with_runtime
from nof0.ingest.followup import refresh_after_ingest
from nof0.kernel.lines import MAX_LINE_BYTES, file_lines, pipe_lines
from nof0.kernel.report import IngestReport
from nof0.runtime import Runtime

__all__ = ["register", "print_report", "finish_load"]

_SHOWN = 20  # rejections printed; the rest are in the dead-letter table


def print_report(report: IngestReport) -> int:
    print(report.summary(), flush=True)
    for rejection in report.rejections[:_SHOWN]:
        print(f"rejected {rejection}", file=sys.stderr)
    if len(report.rejections) > _SHOWN:
        print(f"... and {len(report.rejections) - _SHOWN} more (see table ingest_dead_letters)", file=sys.stderr)
    return 0 if report.ok else 1


async def finish_load(rt: Runtime, command: str, report: IngestReport) -> int:
    """Print the report, run the jobs the load calls for; the exit status of a committed load."""
    status = print_report(report)
    followup = await refresh_after_ingest(rt, report)
    if not followup.ok:
        print(f"{command}: the data is stored, but {followup.failed}", file=sys.stderr, flush=True)
        return 1
    return status


def cmd_ingest(args: argparse.Namespace) -> int:
    from nof0.ingest.service import IngestService

    async def go(rt: Runtime) -> int:
        report = await _ingest_input(IngestService(rt), args)
        return 2 if report is None else await finish_load(rt, "ingest", report)

    return with_runtime(args, go)


async def _ingest_input(service: Any, args: argparse.Namespace) -> IngestReport | None:
    """Ingest the file (or stdin) named on the command line; None when it cannot be read."""
    limit = args.max_line_bytes
    if args.file == "-":
        stdin = sys.stdin.buffer
        # a regular file redirected to stdin is read like a file; a pipe as a live stream
        regular = stat.S_ISREG(os.fstat(stdin.fileno()).st_mode)
        lines = file_lines(stdin, limit) if regular else pipe_lines(stdin, limit)
        return await service.ingest_lines(lines, source=args.source or "stdin")
    try:
        f = open(args.file, "rb")
    except OSError as exc:
        print(f"ingest: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return None
    with f:
        return await service.ingest_lines(file_lines(f, limit), source=args.source or args.file)


def cmd_traders_sync(args: argparse.Namespace) -> int:
    from nof0.ingest.traders_sync import sync_traders

    async def go(rt: Runtime) -> int:
        report = await sync_traders(rt)
        print(f"traders: {len(rt.config.manager.traders)} in {rt.config.root.files.manager}")
        return await finish_load(rt, "traders sync", report)

    return with_runtime(args, go)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser("ingest", help="ingest events from a JSON Lines file, or - for stdin (docs/events.md)")
    p.add_argument("file", help="JSON Lines file, or - to read stdin (a pipe is ingested as it arrives)")
    p.add_argument("--source", default=None, help="name recorded with dead letters (default: the file name)")
    p.add_argument("--max-line-bytes", type=_positive, default=MAX_LINE_BYTES, metavar="N",
                   help=f"reject longer lines (skipped to the next newline); default {MAX_LINE_BYTES}")
    p.set_defaults(fn=cmd_ingest)
    traders = sub.add_parser("traders", help="trader commands")
    tsub = traders.add_subparsers(dest="traders_command", required=True, metavar="TRADERS_COMMAND")
    tsub.add_parser("sync", help="load etc/manager.yaml's traders into models and trader_state").set_defaults(
        fn=cmd_traders_sync)
    from nof0.traders.commands import register as register_traders  # pause, resume, status

    register_traders(tsub)
