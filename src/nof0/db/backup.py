"""Logical backup and restore of the nof0 database (design 2.5 "nightly logical dump"): ``nof0 backup
FILE`` and ``nof0 restore FILE``.

A dump is taken with the server's own major version of ``pg_dump`` (an older one refuses a newer
server; a newer one writes archives an older ``pg_restore`` cannot read), found by
:func:`find_pg_tool`: for the embedded server the binaries pgserver ships with it; for an external one
an explicit ``--pg-bin`` folder, Debian's ``/usr/lib/postgresql/<major>/bin``, then ``PATH``. The file
is pg_dump's custom format (compressed, restorable table by table), written under a temporary name
and renamed once complete, so FILE is either absent or a whole dump.

A restore goes into an empty database only (:func:`database_contents` names what is there), in one
transaction (``pg_restore --single-transaction --exit-on-error``): a failed restore leaves the
database empty. Owners and grants are not restored: the objects belong to the restoring user.

The password of the DSN is handed to the tools in ``PGPASSWORD``, never on their command line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["PgToolError", "PgTool", "server_major", "find_pg_tool", "database_contents", "dump", "restore"]


class PgToolError(RuntimeError):
    """A PostgreSQL client tool is missing, of the wrong version, or failed; the message says which."""


@dataclass(frozen=True)
class PgTool:
    path: Path
    major: int


def server_major(dsn: str) -> int:
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


def _pgserver_bin() -> Path | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR inside pgserver
            from pgserver._commands import POSTGRES_BIN_PATH  # the binaries the embedded server runs
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


def _tool_major(path: Path) -> int | None:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(m.group(1)) if m else None


def find_pg_tool(name: str, major: int, *, embedded: bool, pg_bin: str | None = None) -> PgTool:
    """``pg_dump`` / ``pg_restore`` of PostgreSQL ``major``; :class:`PgToolError` naming every place tried."""
    places: list[Path] = []
    if pg_bin:
        places.append(Path(pg_bin) / name)
    bundled = _pgserver_bin()
    if embedded and bundled is not None:
        places.append(bundled / name)
    places.append(Path(f"/usr/lib/postgresql/{major}/bin") / name)
    on_path = shutil.which(name)
    if on_path:
        places.append(Path(on_path))
    if not embedded and bundled is not None:
        places.append(bundled / name)
    tried = []
    for place in dict.fromkeys(places):
        if not place.exists():
            tried.append(f"{place} (absent)")
            continue
        found = _tool_major(place)
        if found == major:
            return PgTool(place, major)
        tried.append(f"{place} (PostgreSQL {found})" if found else f"{place} (no version)")
    raise PgToolError(
        f"no {name} of PostgreSQL {major} (the server's version) found; tried: {'; '.join(tried)}. Install the "
        f"PostgreSQL {major} client (Debian: apt-get install postgresql-client-{major}, which puts it in "
        f"/usr/lib/postgresql/{major}/bin) or give its folder with --pg-bin"
    )


def _connection(dsn: str) -> tuple[str, dict[str, str]]:
    """(conninfo without the password, environment carrying it)."""
    params = conninfo_to_dict(dsn)
    env = dict(os.environ)
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**params), env


def _run(tool: PgTool, args: list[str], dsn: str, what: str) -> None:
    conninfo, env = _connection(dsn)
    proc = subprocess.run([str(tool.path), *args, f"--dbname={conninfo}"], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        detail = " ".join(proc.stderr.split()) or f"exit status {proc.returncode}"
        raise PgToolError(f"{what} failed ({tool.path.name} {tool.major}): {detail}")


def dump(dsn: str, target: Path, tool: PgTool) -> int:
    """Write a custom-format dump of the whole database to ``target``; returns its size in bytes."""
    target = target.resolve()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _run(tool, ["--format=custom", "--no-password", f"--file={tmp}"], dsn, "pg_dump")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target.stat().st_size


def database_contents(dsn: str) -> list[str]:
    """The tables, views, sequences and functions outside the system schemas (empty: nothing there), the
    tables first (partitions and indexes go with their table)."""
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        rows = conn.execute(
            """
            SELECT n.nspname || '.' || c.relname AS name, CASE WHEN c.relkind IN ('r', 'p') THEN 0 ELSE 1 END AS rank
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
               AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT c.relispartition
            UNION ALL
            SELECT n.nspname || '.' || p.proname || '()', 2 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
            ORDER BY rank, name
            """
        ).fetchall()
    return [r[0] for r in rows]


def restore(dsn: str, source: Path, tool: PgTool) -> None:
    """Restore ``source`` (a custom-format dump) into the empty database ``dsn``, in one transaction."""
    if not source.is_file():
        raise PgToolError(f"{source}: no such backup file")
    present = database_contents(dsn)
    if present:
        shown = ", ".join(present[:5]) + (f" and {len(present) - 5} more" if len(present) > 5 else "")
        raise PgToolError(
            f"the target database is not empty ({len(present)} objects: {shown}); restore only into an empty "
            "database: create a new one (createdb) and point postgres.dsn (NOF0_POSTGRES_DSN) at it"
        )
    _run(tool, ["--no-password", "--single-transaction", "--exit-on-error", "--no-owner", "--no-acl", str(source)],
         dsn, "pg_restore")
