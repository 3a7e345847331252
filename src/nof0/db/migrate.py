"""Migration runner: versioned plain-SQL files in ``db/migrations`` applied with yoyo.

Each migration runs in its own transaction (yoyo's default for SQL files) and has a
``.rollback.sql``. Two processes migrating at once are serialised by a Postgres advisory lock held
on a separate connection around the whole run (yoyo's own lock table cannot protect the creation of
its internal tables), so the second one finds nothing to do.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterator

import psycopg
from yoyo import get_backend, read_migrations

__all__ = ["MigrationStatus", "migrate", "rollback", "status", "migrations_dir"]

_LOCK_KEY = 0x6E6F6630  # "nof0"


def migrations_dir() -> Path:
    return Path(str(resources.files("nof0.db") / "migrations"))


def _yoyo_uri(dsn: str) -> str:
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise ValueError(f"not a PostgreSQL URI: {dsn!r} (expected postgresql://...)")
    return f"postgresql+psycopg://{rest}"


@contextmanager
def _migration_lock(dsn: str) -> Iterator[None]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


@contextmanager
def _backend(dsn: str) -> Iterator[object]:
    backend = get_backend(_yoyo_uri(dsn))
    try:
        yield backend
    finally:
        backend.connection.close()


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[str]
    pending: list[str]

    @property
    def current(self) -> bool:
        return not self.pending


def migrate(dsn: str) -> list[str]:
    """Apply every pending migration; returns the ids applied (empty when already current)."""
    migrations = read_migrations(str(migrations_dir()))
    with _migration_lock(dsn), _backend(dsn) as backend:
        with backend.lock():
            todo = backend.to_apply(migrations)
            backend.apply_migrations(todo)
        return [m.id for m in todo]


def rollback(dsn: str, steps: int = 1) -> list[str]:
    """Roll back the ``steps`` most recent migrations; returns the ids rolled back."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    migrations = read_migrations(str(migrations_dir()))
    with _migration_lock(dsn), _backend(dsn) as backend:
        with backend.lock():
            todo = backend.to_rollback(migrations)[:steps]
            backend.rollback_migrations(todo)
        return [m.id for m in todo]


def status(dsn: str) -> MigrationStatus:
    migrations = read_migrations(str(migrations_dir()))
    with _backend(dsn) as backend:
        pending = {m.id for m in backend.to_apply(migrations)}
    ids = [m.id for m in migrations]
    return MigrationStatus(applied=[i for i in ids if i not in pending], pending=[i for i in ids if i in pending])
