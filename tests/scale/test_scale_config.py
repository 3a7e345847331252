"""The scale-out settings: Redis Cluster nodes and the Postgres read replica, from the environment."""

from __future__ import annotations

import pytest

from nof0.cache.keys import Keyspace
from nof0.config import ConfigError, TTLClasses, load_config
from tests.conftest import ETC


def test_cluster_nodes_and_the_read_dsn_come_from_the_environment():
    cfg = load_config(ETC, env={"NOF0_REDIS_CLUSTER_NODES": "127.0.0.1:7000, 127.0.0.1:7001",
                                "NOF0_POSTGRES_READ_DSN": "postgresql://postgres@127.0.0.1:5433/nof0"})
    assert cfg.root.redis.cluster_nodes == ["127.0.0.1:7000", "127.0.0.1:7001"]
    assert cfg.root.postgres.read_dsn == "postgresql://postgres@127.0.0.1:5433/nof0"


def test_a_cluster_node_that_is_not_host_port_is_a_configuration_error():
    with pytest.raises(ConfigError, match="redis.cluster_nodes.*'7000' is not host:port"):
        load_config(ETC, env={"NOF0_REDIS_CLUSTER_NODES": "7000"})


def test_single_node_names_are_the_designs_and_cluster_names_carry_hash_tags():
    one, many = Keyspace(TTLClasses()), Keyspace(TTLClasses(), cluster=True)
    assert one.positions("gpt-5").name == "nof0:positions:gpt-5"
    assert one.trades_stream().name == "nof0:trades:stream"
    assert many.positions("gpt-5").name == "nof0:positions:{gpt-5}"
    assert many.positions_lock("gpt-5").name == "nof0:lock:positions:{gpt-5}"
    assert many.trades_stream().name == "nof0:{trades}:trades:stream"
    assert many.ingest_trade("t1").name == "nof0:{trades}:ingest:trade:t1"
    assert many.leaderboard().name.startswith("nof0:{leaderboard}:")
    assert many.scan_pattern("positions") == "nof0:positions:{*}"
