"""Real servers for the tests, isolated per test.

``NOF0_TEST_POSTGRES_DSN`` / ``NOF0_TEST_REDIS_URL`` select external servers (``.ci/run`` sets them
when the machine's PostgreSQL and Redis answer); otherwise the embedded servers start once per
session in a short temporary directory. Each test gets its own database, cloned from a migrated
template, and its own Redis key prefix.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
import redis

from nof0.config import Config, load_config
from nof0.db.dsn import with_database
from nof0.db.migrate import migrate
from nof0.embedded import EmbeddedPostgres, EmbeddedRedis
from nof0.runtime import Servers, open_runtime

REPO = Path(__file__).resolve().parents[1]
# nof1's captures of 2025-10-26: its numbers, ids and times; the chat texts are our own (see README there)
FIXTURES = REPO / "tests" / "fixtures" / "nof1-2025-10-26"
ETC = REPO / "etc" / "nof0.yaml"


@dataclass
class TestServers:
    admin_dsn: str  # a database we may connect to for CREATE/DROP DATABASE
    redis_url: str
    embedded: bool


@pytest.fixture(scope="session")
def test_servers():
    pg = os.environ.get("NOF0_TEST_POSTGRES_DSN")
    rd = os.environ.get("NOF0_TEST_REDIS_URL")
    tmp = Path(tempfile.mkdtemp(prefix="nof0t-", dir="/tmp"))
    emb_pg = emb_rd = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not pg:
            emb_pg = EmbeddedPostgres(tmp)
            pg = emb_pg.start()
        if not rd:
            emb_rd = EmbeddedRedis(tmp)
            rd = emb_rd.start()
    try:
        yield TestServers(pg, rd, embedded=emb_pg is not None)
    finally:
        for s in (emb_rd, emb_pg):
            if s is not None:
                s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _admin(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


@pytest.fixture(scope="session")
def template_db(test_servers):
    name = f"nof0_tpl_{uuid.uuid4().hex[:10]}"
    with _admin(test_servers.admin_dsn) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    migrate(with_database(test_servers.admin_dsn, name))
    yield name
    with _admin(test_servers.admin_dsn) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _new_database(admin_dsn: str, template: str | None = None):
    name = f"nof0_t_{uuid.uuid4().hex[:12]}"
    with _admin(admin_dsn) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


@pytest.fixture
def empty_dsn(test_servers):
    """A fresh database with no migrations applied."""
    name = _new_database(test_servers.admin_dsn)
    yield with_database(test_servers.admin_dsn, name)
    with _admin(test_servers.admin_dsn) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_dsn(test_servers, template_db):
    """A fresh, fully migrated database (a clone of the session's template)."""
    name = _new_database(test_servers.admin_dsn, template_db)
    yield with_database(test_servers.admin_dsn, name)
    with _admin(test_servers.admin_dsn) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_prefix(test_servers):
    """An isolated key namespace; every key under it is removed after the test."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(test_servers.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_sync(test_servers):
    client = redis.Redis.from_url(test_servers.redis_url)
    yield client
    client.close()


def make_config(pg_dsn: str, redis_url: str, prefix: str, **env: str) -> Config:
    environ = {"NOF0_POSTGRES_DSN": pg_dsn, "NOF0_REDIS_URL": redis_url, **env}
    cfg = load_config(ETC, env=environ)
    cfg.root.redis.prefix = prefix
    return cfg


@pytest.fixture
def config(pg_dsn, test_servers, redis_prefix) -> Config:
    return make_config(pg_dsn, test_servers.redis_url, redis_prefix)


@pytest_asyncio.fixture
async def rt(config):
    servers = Servers(config.root.postgres.dsn, config.root.redis.url)
    async with open_runtime(config, servers) as runtime:
        yield runtime
