"""The servers one benchmark run measures on, and their removal afterwards.

Machine servers when both ``NOF0_POSTGRES_DSN`` and ``NOF0_REDIS_URL`` are set: a scratch database
(created, migrated, dropped; the benches truncate tables) and a fresh Redis key prefix (its keys deleted).
Otherwise the embedded servers in a temporary data folder, removed with everything in it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from nof0.config import Config, load_config
from nof0.db.dsn import with_database
from nof0.db.migrate import migrate
from nof0.runtime import Servers, resolve_servers

__all__ = ["Scratch", "scratch_servers", "REPO"]

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Scratch:
    config: Config  # etc/nof0.yaml with the run's Redis prefix and log level
    servers: Servers  # postgres_dsn names the migrated scratch database
    external: bool  # machine servers (else embedded)
    tmp: Path  # a folder of the run's own, removed at the end

    @property
    def dsn(self) -> str:
        return self.servers.postgres_dsn

    @property
    def prefix(self) -> str:
        return self.config.root.redis.prefix

    @property
    def where(self) -> str:
        return "machine servers" if self.external else "embedded servers"


@contextmanager
def scratch_servers(log_level: str = "warning") -> Iterator[Scratch]:
    external = bool(os.environ.get("NOF0_POSTGRES_DSN")) and bool(os.environ.get("NOF0_REDIS_URL"))
    tmp = Path(tempfile.mkdtemp(prefix="nof0b-", dir="/tmp"))
    env = dict(os.environ)
    if not external:
        env.pop("NOF0_POSTGRES_DSN", None)
        env.pop("NOF0_REDIS_URL", None)
        env["NOF0_DATA_DIR"] = str(tmp / "data")
    config = load_config(REPO / "etc" / "nof0.yaml", env=env)
    config.root.redis.prefix = f"bench{uuid.uuid4().hex[:8]}"
    config.root.log.level = log_level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        servers = resolve_servers(config)
    admin_dsn, scratch = servers.postgres_dsn, None
    try:
        dsn = admin_dsn
        if external:
            scratch = f"nof0_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{scratch}"')
            dsn = with_database(admin_dsn, scratch)
        migrate(dsn)
        yield Scratch(config, Servers(dsn, servers.redis_url) if external else servers, external, tmp)
    finally:
        if scratch:
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        client = redis.Redis.from_url(servers.redis_url)
        for key in client.scan_iter(match=f"{config.root.redis.prefix}:*", count=1000):
            client.delete(key)
        client.close()
        servers.stop()
        shutil.rmtree(tmp, ignore_errors=True)
