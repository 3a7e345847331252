"""``nof0 doctor``: can this deployment work? Checks both servers, versions, migrations, keys (on a Redis
Cluster: its state, every master's version and the keys on all of them).

Every failed check says what to do. The report is plain data so the CLI prints it and tests read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
import redis
from redis.cluster import ClusterNode, RedisCluster

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
        checks += _redis_checks(config, servers)
    except Exception as exc:
        checks.append(Check("redis", False, f"cannot connect to {_where(servers, 'redis')}: {exc}",
                            "start Redis or set NOF0_REDIS_URL (or redis.url in etc/nof0.yaml)"))
    return checks


def _redis_checks(config: Config, servers: Servers) -> list[Check]:
    """The version of every server (each master of a cluster) and the keys under the prefix on all of them."""
    nodes = config.root.redis.cluster_nodes
    if nodes:
        client = RedisCluster(startup_nodes=[ClusterNode(n.rpartition(":")[0], int(n.rpartition(":")[2]))
                                             for n in nodes], socket_timeout=5, socket_connect_timeout=5)
    else:
        client = redis.Redis.from_url(servers.redis_url, socket_timeout=5, socket_connect_timeout=5)
    checks = []
    try:
        if nodes:
            masters = client.get_primaries()
            versions = {f"{m.host}:{m.port}": client.info("server", target_nodes=m)["redis_version"] for m in masters}
            state = client.cluster_info().get("cluster_state")
            checks.append(Check("redis cluster", state == "ok", f"cluster_state {state}, {len(masters)} masters",
                                "" if state == "ok" else "see `redis-cli --cluster check` on a node"))
        else:
            versions = {_where(servers, "redis"): client.info("server")["redis_version"]}
        for where, version in versions.items():
            ok = tuple(int(x) for x in version.split(".")[:2]) >= (6, 2)
            checks.append(Check("redis", ok, f"Redis {version} at {where}", "" if ok else "nof0 needs Redis 6.2 or newer"))
        keys = Keyspace(config.ttl, prefix=config.root.redis.prefix, cluster=bool(nodes))
        counts: dict[str, int] = {}
        for raw in client.scan_iter(match=keys.scan_pattern(), count=1000):  # every master on a cluster
            family = keys.family_of(raw.decode())
            label = family.pattern if family is not None else "other"
            counts[label] = counts.get(label, 0) + 1
        summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no keys yet"
        where = f" on {len(versions)} masters" if nodes else ""
        checks.append(Check("keys", True, f"{sum(counts.values())} keys under {keys.prefix}{where}: ({summary})"))
    finally:
        client.close()
    return checks


def _where(servers: Servers, which: str) -> str:
    return servers.describe()[which]
