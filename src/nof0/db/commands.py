"""``nof0 backup FILE`` and ``nof0 restore FILE`` (design 2.5 backups; docs/runbook.md "Backup and
restore"). A restore goes into an empty database, then applies the migrations newer than the dump and
rebuilds every Redis key from the restored rows (the keys of the namespace are dropped first: they
described another database)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any
from nof0.commands_runtime import with_servers

__all__ = ["register"]


def register(sub: Any) -> None:
    b = sub.add_parser("backup", help="write a logical dump of the database (pg_dump of the server's version)")
    b.add_argument("file", help="the dump to write (pg_dump custom format)")
    b.add_argument("--pg-bin", default=None, help="folder holding pg_dump of the server's major version")
    b.set_defaults(fn=cmd_backup)
    r = sub.add_parser("restore", help="restore a dump into an empty database, migrate, rebuild the caches")
    r.add_argument("file", help="a dump written by nof0 backup")
    r.add_argument("--pg-bin", default=None, help="folder holding pg_restore of the server's major version")
    r.set_defaults(fn=cmd_restore)


def cmd_backup(args: argparse.Namespace) -> int:
    from nof0.db.backup import PgToolError, dump, find_pg_tool, server_major

    def go(servers: Any) -> int:
        dsn = servers.postgres_dsn
        try:
            tool = find_pg_tool("pg_dump", server_major(dsn), embedded=servers.embedded_postgres is not None,
                                pg_bin=args.pg_bin)
            size = dump(dsn, Path(args.file), tool)
        except PgToolError as exc:
            print(f"nof0 backup: {exc}", file=sys.stderr)
            return 1
        print(f"backup written: {args.file} ({size} bytes; pg_dump {tool.major} at {tool.path})", flush=True)
        return 0

    return with_servers(args, go)


def cmd_restore(args: argparse.Namespace) -> int:
    from nof0.db.backup import PgToolError, find_pg_tool, restore, server_major
    from nof0.db.migrate import migrate
    from nof0.jobs.rebuild import drop_keyspace, rebuild_caches
    from nof0.runtime import open_runtime

    def go(servers: Any) -> int:
        dsn = servers.postgres_dsn
        try:
            tool = find_pg_tool("pg_restore", server_major(dsn), embedded=servers.embedded_postgres is not None,
                                pg_bin=args.pg_bin)
            restore(dsn, Path(args.file), tool)
        except PgToolError as exc:
            print(f"nof0 restore: {exc}", file=sys.stderr)
            return 1
        applied = migrate(dsn)

        async def caches() -> Any:
            async with open_runtime(args.config_obj, servers) as rt:
                dropped = await drop_keyspace(rt)
                return dropped, await rebuild_caches(rt, "restore")

        dropped, report = asyncio.run(caches())
        print(f"restored: {args.file} (pg_restore {tool.major}); migrations applied after it: "
              f"{', '.join(applied) or 'none'}", flush=True)
        print(f"caches: {dropped} old keys dropped, rebuilt in {report.seconds:.2f} s ({report.status})", flush=True)
        for family, error in report.failed.items():
            print(f"  {family}: {error}", flush=True)
        return 0 if not report.failed else 1

    return with_servers(args, go)
