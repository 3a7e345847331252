"""``nof0 retention``: run the retention job (design 2.5 "Archival") once; ``nof0 cache rebuild``:
rebuild every design Redis key from Postgres (design 3.4) once.

It runs what the scheduler's ``retention`` job runs, recorded in ``job_runs`` like a scheduled run,
and prints per table the rows archived and the files written. Exit code 1 when a batch failed (its
rows stay in the table), 0 otherwise, also when ``jobs.retention.enabled`` is false (nothing runs).
"""

from __future__ import annotations

import argparse
from typing import Any

from nof0.commands_runtime import with_runtime
from nof0.runtime import Runtime

__all__ = ["register", "format_retention"]


def register(sub: Any) -> None:
    sub.add_parser(
        "retention", help="archive old price ticks and decision cycles to gzip'd CSV, then delete them",
    ).set_defaults(fn=cmd_retention)
    cache = sub.add_parser("cache", help="Redis cache commands")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True, metavar="CACHE_COMMAND")
    cache_sub.add_parser("rebuild", help="rebuild every design Redis key from Postgres (design 3.4)").set_defaults(
        fn=cmd_cache_rebuild)


def cmd_cache_rebuild(args: argparse.Namespace) -> int:
    """Exit 0 when every key family was rebuilt, 1 when some failed (they are listed)."""
    from nof0.jobs.rebuild import rebuild_caches

    async def go(rt: Runtime) -> int:
        report = await rebuild_caches(rt, "manual")
        print(f"cache rebuild {report.status} in {report.seconds:.2f} s", flush=True)
        for family, owners in report.owners.items():
            print(f"  {family}: {owners}", flush=True)
        for family, error in report.failed.items():
            print(f"  {family}: FAILED {error}", flush=True)
        return 0 if report.status == "ok" else 1

    return with_runtime(args, go)


def cmd_retention(args: argparse.Namespace) -> int:
    from nof0.jobs.retention import RETENTION, retention_job
    from nof0.jobs.runner import run_recorded

    if not args.config_obj.root.jobs.retention.enabled:
        print("retention is disabled (jobs.retention.enabled: false); nothing done", flush=True)
        return 0

    async def go(rt: Runtime) -> int:
        outcome = await run_recorded(rt, RETENTION, retention_job)
        print(format_retention(outcome.ok, outcome.duration_s, outcome.error, outcome.result), flush=True)
        return 0 if outcome.ok else 1

    return with_runtime(args, go)


def format_retention(ok: bool, seconds: float, error: str | None, summary: dict[str, Any] | None) -> str:
    lines = [f"retention {'done' if ok else 'FAILED'} in {seconds:.2f} s"]
    for t in (summary or {}).get("tables", []):
        if t["status"] == "disabled":
            lines.append(f"  {t['table']}: kept forever (days 0)")
            continue
        lines.append(f"  {t['table']}: {t['status']}, older than {t['days']} days; {t['rows']} rows archived"
                     f" in {len(t['files'])} file(s)")
        lines.extend(f"    {f}" for f in t["files"])
    if error:
        lines.append(f"  error: {error}")
    return "\n".join(lines)
