"""Scale-test fixtures: a Redis Cluster of three masters for the module, started and stopped here."""

from __future__ import annotations

import dataclasses

import pytest
import pytest_asyncio

from nof0.kernel.clock import FixedClock
from nof0.runtime import Servers, open_runtime
from tests.conftest import make_config
from tests.scale.nodes import redis_cluster

NOW_MS = 1_761_452_400_000


@pytest.fixture(scope="module")
def cluster_nodes():
    with redis_cluster(3) as nodes:
        yield nodes


@pytest_asyncio.fixture
async def cluster_rt(pg_dsn, redis_prefix, cluster_nodes):
    config = make_config(pg_dsn, "", redis_prefix, NOF0_REDIS_CLUSTER_NODES=",".join(cluster_nodes))
    async with open_runtime(config, Servers(pg_dsn, f"redis://{cluster_nodes[0]}")) as rt:
        yield dataclasses.replace(rt, clock=FixedClock(NOW_MS))
