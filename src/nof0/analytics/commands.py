"""``nof0 analytics`` and ``nof0 jobs``: run the analytics job once, show the job ledger.

``nof0 analytics`` runs what the scheduler's ``analytics`` job runs (compute, persist and publish the
analytics, refresh the views, rebuild the leaderboard and since-inception caches), recorded in
``job_runs`` like a scheduled run, and prints a summary. Exit code 1 when a model failed.
"""

from __future__ import annotations

import argparse
from typing import Any

from nof0.commands_runtime import with_runtime
from nof0.runtime import Runtime

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "analytics",
        help="compute analytics of every model (or --model ...), persist, refresh views, publish caches",
    )
    p.add_argument("--model", action="append", dest="models", metavar="MODEL_ID",
                   help="only this model (repeatable)")
    p.set_defaults(fn=cmd_analytics)
    sub.add_parser("jobs", help="show the scheduled jobs' last runs (job_runs)").set_defaults(fn=cmd_jobs)


def cmd_analytics(args: argparse.Namespace) -> int:
    from nof0.jobs.runner import run_recorded
    from nof0.jobs.tasks import ANALYTICS, analytics_job, analytics_for

    async def go(rt: Runtime) -> int:
        job = analytics_job if not args.models else analytics_for(args.models)
        outcome = await run_recorded(rt, ANALYTICS, job)
        print(format_outcome(outcome.ok, outcome.duration_s, outcome.error, outcome.result), flush=True)
        return 0 if outcome.ok else 1

    return with_runtime(args, go)


def format_outcome(ok: bool, seconds: float, error: str | None, summary: dict[str, Any] | None) -> str:
    lines = [f"analytics {'done' if ok else 'FAILED'} in {seconds:.2f} s"]
    if summary:
        a = summary["analytics"]
        lines.append(
            f"  models computed {len(a['computed'])}, skipped (locked by another worker) {len(a['skipped_locked'])},"
            f" failed {len(a['failed'])}"
            + (f", unknown {', '.join(a['unknown'])}" if a["unknown"] else "")
        )
        lines.append(
            f"  facts: {a['trades']} trades, {a['decisions']} decisions"
            + (f" ({a['invalid_decisions']} invalid, skipped)" if a["invalid_decisions"] else "")
        )
        lines.append(
            f"  seconds: read {a['read_s']:.2f}, compute {a['compute_s']:.2f}, write {a['write_s']:.2f},"
            f" refresh views {a['refresh_s']:.2f}, publish {a['publish_s']:.2f}"
        )
        lb, si = summary["leaderboard"], summary["since_inception"]
        lines.append(f"  leaderboard: {lb['models']} models; since inception: {si['points']} points")
        for part in (a, lb, si):
            if part.get("redis_error"):
                lines.append(f"  redis not updated: {part['redis_error']}")
    if error:
        lines.append(f"  error: {error}")
    return "\n".join(lines)


def cmd_jobs(args: argparse.Namespace) -> int:
    from nof0.jobs import repository as repo

    async def go(rt: Runtime) -> int:
        async with rt.pool.connection() as conn, conn.transaction():
            rows = await repo.list_job_runs(conn)
        if not rows:
            print("no job has run yet")
        for r in rows:
            print(
                f"{r['job']}: {r['last_status']}, started {r['last_started_at']}, finished {r['last_finished_at']},"
                f" {r['last_duration_ms'] or 0:.0f} ms; runs {r['runs']}, failures {r['failures']}"
                + (f"; last error: {r['last_error']}" if r["last_error"] else "")
            )
        return 0

    return with_runtime(args, go)
