"""DSN helpers. nof0 takes PostgreSQL DSNs in URI form (postgresql://user@host:port/db?host=...)."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

__all__ = ["with_database", "database_of", "dsn_problem"]

_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg")
_QUOTED = re.compile(r'"([^"]*)"')


def with_database(dsn: str, database: str) -> str:
    """The same server, another database."""
    parts = urlsplit(dsn)
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"expected a postgresql:// URI, got {dsn!r}")
    return urlunsplit(parts._replace(path=f"/{database}"))


def database_of(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def dsn_problem(dsn: str) -> str | None:
    """What is wrong with ``dsn``, in words that never show its password; None when it parses.

    libpq's parse errors quote the offending part of the DSN (``unexpected spaces found in "<password>"``,
    sometimes the whole URI): every quoted fragment touching the password is masked, and so is the
    password wherever else it appears.
    """
    secrets = _secrets(dsn)
    if not dsn.startswith(tuple(f"{s}://" for s in _SCHEMES)):
        return "must be a postgresql:// URI, e.g. postgresql://user:password@host:5432/nof0"
    try:
        parts = urlsplit(dsn)
        parts.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
    except ValueError as exc:
        return _masked(f"not a valid URI: {exc}", secrets)
    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        return _masked(" ".join(str(exc).split()), secrets)
    return None


def _secrets(dsn: str) -> list[str]:
    found: list[str] = []
    try:
        password = urlsplit(dsn).password
    except ValueError:
        password = None
    if password is None and "@" in dsn and "://" in dsn:  # what urlsplit could not split: user:password@
        userinfo = dsn.split("://", 1)[1].rsplit("@", 1)[0]
        password = userinfo.split(":", 1)[1] if ":" in userinfo else None
    if password:
        found += [password, unquote(password)]
    query = dsn.split("?", 1)[1] if "?" in dsn else ""
    for param in query.split("&"):  # ?password=... (a query value may hold spaces: split on & only)
        key, _, value = param.partition("=")
        if key.strip() == "password" and value:
            found += [value, unquote(value)]
    return sorted({s for s in found if s}, key=len, reverse=True)


def _masked(message: str, secrets: list[str]) -> str:
    def mask(m: re.Match[str]) -> str:
        fragment = m.group(1)
        touches = any(fragment and (fragment in s or s in fragment) for s in secrets)
        return '"***"' if touches else m.group(0)

    for s in secrets:  # whole secrets first: a password may itself hold a quote
        message = message.replace(s, "***")
    return _QUOTED.sub(mask, message)
