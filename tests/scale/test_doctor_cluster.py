"""``nof0 doctor`` on a Redis Cluster of three masters: the cluster's state, every master's version, and the
keys counted on all of them (not only on the node ``redis.url`` names)."""

from __future__ import annotations

from redis.cluster import ClusterNode, RedisCluster

from nof0.doctor import run_doctor
from nof0.runtime import Servers
from tests.conftest import make_config

SYMBOLS = [f"S{i}" for i in range(30)]  # spread over the three masters' slots


def test_doctor_covers_every_master(pg_dsn, redis_prefix, cluster_nodes):
    config = make_config(pg_dsn, "", redis_prefix, NOF0_REDIS_CLUSTER_NODES=",".join(cluster_nodes))
    client = RedisCluster(startup_nodes=[ClusterNode(*n.split(":")) for n in cluster_nodes])
    try:
        for s in SYMBOLS:
            client.set(f"{redis_prefix}:price:latest:{s}", "{}")
        holders = {client.get_node_from_key(f"{redis_prefix}:price:latest:{s}").name for s in SYMBOLS}
        assert len(holders) == 3
        checks = run_doctor(config, Servers(pg_dsn, f"redis://{cluster_nodes[0]}"))
    finally:
        for s in SYMBOLS:
            client.delete(f"{redis_prefix}:price:latest:{s}")
        client.close()
    assert all(c.ok for c in checks), checks
    assert sorted(c.detail.rsplit(" at ", 1)[1] for c in checks if c.name == "redis") == sorted(cluster_nodes)
    (cluster,) = [c for c in checks if c.name == "redis cluster"]
    assert "cluster_state ok, 3 masters" in cluster.detail
    (keys,) = [c for c in checks if c.name == "keys"]
    assert f"{len(SYMBOLS)} keys" in keys.detail and "on 3 masters" in keys.detail
