"""DSN helpers. nof0 takes PostgreSQL DSNs in URI form (postgresql://user@host:port/db?host=...)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["with_database", "database_of"]


def with_database(dsn: str, database: str) -> str:
    """The same server, another database."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise ValueError(f"expected a postgresql:// URI, got {dsn!r}")
    return urlunsplit(parts._replace(path=f"/{database}"))


def database_of(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")
