"""The ``nof0`` command. Each subcommand builds its dependencies through ``runtime.py`` and calls
services; no SQL and no Redis keys live here.

Exit codes: 0 success, 1 the command ran and found a problem (doctor, ingest rejections, parity
mismatch), 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import signal
import sys
from typing import Any, Callable

import psycopg
import redis

from nof0.commands_runtime import UsageError
from nof0.commands_runtime import print_result as _print
from nof0.commands_runtime import with_runtime as _with_runtime
from nof0.commands_runtime import with_servers as _with_servers
from nof0.config import ConfigError, load_config
from nof0.embedded import EmbeddedError
from nof0.obs.logging import configure_logging, get_logger
from nof0.runtime import Runtime, Servers

__all__ = ["main", "build_parser", "UsageError"]

log = get_logger("nof0.cli")


# ------------------------------------------------------------------------------ commands


def cmd_migrate(args: argparse.Namespace) -> int:
    from nof0.db import migrate as m

    def go(servers: Servers) -> int:
        applied = m.migrate(servers.postgres_dsn)
        _print(f"applied: {', '.join(applied)}" if applied else "database is current; nothing to apply")
        return 0

    return _with_servers(args, go)


def cmd_rollback(args: argparse.Namespace) -> int:
    from nof0.db import migrate as m

    if args.steps < 1:
        raise UsageError(f"rollback needs a number of steps of at least 1, got {args.steps}")

    def go(servers: Servers) -> int:
        done = m.rollback(servers.postgres_dsn, args.steps)
        _print(f"rolled back: {', '.join(done)}" if done else "nothing to roll back")
        return 0

    return _with_servers(args, go)


def cmd_db_status(args: argparse.Namespace) -> int:
    from nof0.db import migrate as m

    def go(servers: Servers) -> int:
        st = m.status(servers.postgres_dsn)
        for v in st.applied:
            print(f"applied  {v}")
        for v in st.pending:
            print(f"pending  {v}")
        print("current" if st.current else f"{len(st.pending)} pending: run `nof0 migrate`")
        return 0

    return _with_servers(args, go)


def cmd_doctor(args: argparse.Namespace) -> int:
    from nof0.doctor import run_doctor

    def go(servers: Servers) -> int:
        checks = run_doctor(args.config_obj, servers)
        for c in checks:
            print(f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
            if not c.ok and c.advice:
                print(f"       -> {c.advice}")
        bad = [c for c in checks if not c.ok]
        print("all checks passed" if not bad else f"{len(bad)} problem(s) found")
        return 1 if bad else 0

    return _with_servers(args, go)


def cmd_refresh_views(args: argparse.Namespace) -> int:
    from nof0.jobs.views import refresh_views

    async def go(rt: Runtime) -> int:
        seconds = await refresh_views(rt)
        _print(f"refresh_views_nof0() done in {seconds * 1000:.1f} ms")
        return 0

    return _with_runtime(args, go)


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: servers, migrations, readiness, then the service until interrupted."""
    from nof0.service import run_service

    async def go(rt: Runtime) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await run_service(rt, stop, host=args.host, port=args.port, role=args.role,
                                 metrics_port=args.metrics_port)

    return _with_runtime(args, go)


# ------------------------------------------------------------------------------ parser



def _version() -> str:
    try:
        return importlib.metadata.version("nof0")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nof0", description="nof0: data platform of an AI trading arena")
    p.add_argument("--config", default=None, help="root manifest (default etc/nof0.yaml or $NOF0_CONFIG)")
    p.add_argument("--version", action="version", version=f"nof0 {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="start servers, migrate, serve the API and jobs until interrupted")
    run.add_argument("--host", default=None)
    run.add_argument("--port", type=int, default=None)
    run.add_argument("--role", choices=("all", "api", "engine"), default="all",
                     help="api: the API only; engine: feeds, exchanges, traders and jobs; all (default): both")
    run.add_argument("--metrics-port", type=int, default=None,
                     help="where --role engine answers /metrics (default api.metrics_port; 0: nowhere)")
    run.set_defaults(fn=cmd_run)

    sub.add_parser("migrate", help="apply pending migrations").set_defaults(fn=cmd_migrate)
    rb = sub.add_parser("rollback", help="roll back the last N migrations")
    rb.add_argument("steps", nargs="?", type=int, default=1)
    rb.set_defaults(fn=cmd_rollback)

    db = sub.add_parser("db", help="database commands")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    dbsub.add_parser("status", help="show applied and pending migrations").set_defaults(fn=cmd_db_status)

    sub.add_parser("doctor", help="check servers, versions, migrations and keys").set_defaults(fn=cmd_doctor)
    sub.add_parser("refresh-views", help="run refresh_views_nof0() once").set_defaults(fn=cmd_refresh_views)

    for register in _EXTENSIONS:
        register(sub)
    return p


# Later subsystems (ingest, import, parity, serve, analytics, traders) add their subcommands here.
_EXTENSIONS: list[Callable[[Any], None]] = [
    __import__("nof0.api.commands", fromlist=["register"]).register,  # serve, parity
    __import__("nof0.analytics.commands", fromlist=["register"]).register,  # analytics, jobs
    __import__("nof0.ingest.commands", fromlist=["register"]).register,  # ingest, traders sync/pause/resume/status
    __import__("nof0.importer.commands", fromlist=["register"]).register,  # import
    __import__("nof0.jobs.commands", fromlist=["register"]).register,  # retention, cache rebuild
    __import__("nof0.db.commands", fromlist=["register"]).register,  # backup, restore
    __import__("nof0.engine.market.commands", fromlist=["register"]).register,  # feed
    __import__("nof0.engine.exchange.commands", fromlist=["register"]).register,  # order
]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.config_obj = load_config(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.config_obj.root.log.level, args.config_obj.root.log.json)
    try:
        return int(args.fn(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except EmbeddedError as exc:
        print(f"embedded server error: {exc}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as exc:
        print(f"cannot reach PostgreSQL: {_one_line(exc)} (check NOF0_POSTGRES_DSN or postgres.dsn; "
              "`nof0 doctor` shows both servers)", file=sys.stderr)
        return 2
    except psycopg.ProgrammingError as exc:
        print(f"PostgreSQL error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except redis.ConnectionError as exc:
        print(f"cannot reach Redis: {_one_line(exc)} (check NOF0_REDIS_URL or redis.url; "
              "`nof0 doctor` shows both servers)", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"nof0 {args.command}: {exc}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
