"""``nof0 doctor``: can this deployment work? Checks both servers, versions, migrations, keys.

Every failed check says what to do. The report is plain data so the CLI prints it and tests read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
import redis

from nof0.cache.keys import Keyspace
from nof0.config import Config
from nof0.db import migrate as migrations
from nof0.runtime import Servers

__all__ = ["Check", "run_doctor"]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    advice: str = ""


def run_doctor(config: Config, servers: Servers) -> list[Check]:
    checks: list[Check] = []
    try:
        with psycopg.connect(servers.postgres_dsn, connect_timeout=5) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            major = int(version.split(".")[0])
            checks.append(Check("postgres", major >= 15, f"PostgreSQL {version} at {_where(servers, 'postgres')}",
                                "" if major >= 15 else "nof0 needs PostgreSQL 15 or newer"))
        st = migrations.status(servers.postgres_dsn)
        checks.append(Check(
            "migrations", st.current,
            f"applied: {', '.join(st.applied) or 'none'}; pending: {', '.join(st.pending) or 'none'}",
            "" if st.current else "run `nof0 migrate`",
        ))
    except Exception as exc:  # report, never crash: this is the diagnostic
        checks.append(Check("postgres", False, f"cannot connect to {_where(servers, 'postgres')}: {exc}".strip(),
                            "start PostgreSQL or set NOF0_POSTGRES_DSN (or postgres.dsn in etc/nof0.yaml)"))
    try:
        client = redis.Redis.from_url(servers.redis_url, socket_timeout=5, socket_connect_timeout=5)
        try:
            info = client.info("server")
            keys = Keyspace(config.ttl, prefix=config.root.redis.prefix)
            counts: dict[str, int] = {}
            for raw in client.scan_iter(match=keys.scan_pattern(), count=1000):
                family = keys.family_of(raw.decode())
                label = family.pattern if family is not None else "other"
                counts[label] = counts.get(label, 0) + 1
            version = info["redis_version"]
            ok = tuple(int(x) for x in version.split(".")[:2]) >= (6, 2)
            summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no keys yet"
            checks.append(Check("redis", ok, f"Redis {version} at {_where(servers, 'redis')}",
                                "" if ok else "nof0 needs Redis 6.2 or newer"))
            checks.append(Check("keys", True, f"{sum(counts.values())} keys under {keys.prefix}: ({summary})"))
        finally:
            client.close()
    except Exception as exc:
        checks.append(Check("redis", False, f"cannot connect to {_where(servers, 'redis')}: {exc}",
                            "start Redis or set NOF0_REDIS_URL (or redis.url in etc/nof0.yaml)"))
    return checks


def _where(servers: Servers, which: str) -> str:
    return servers.describe()[which]
