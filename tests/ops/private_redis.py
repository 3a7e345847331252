"""A Redis server of the test's own on a free loopback port, no persistence, always stopped: for tests that
FLUSHALL (never on the shared server, whose other databases and prefixes belong to other test sessions)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import redis

from tests.scale.nodes import _stop, free_port, wait_for

__all__ = ["private_redis"]


def _pings(url: str) -> bool:
    with redis.Redis.from_url(url) as client:
        return bool(client.ping())


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """Yields the server's URL."""
    tmp = Path(tempfile.mkdtemp(prefix="nof0-redis-"))
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp),
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for(lambda: _pings(url), f"the private redis-server on port {port}")
        yield url
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
