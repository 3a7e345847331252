"""kill -9 between commit and publish (and between publish and the watermark), then a restart: the
trades stream holds every change once, in commit order, under the outbox's ids (issue 11).

The session (``outbox_session.py``) SIGKILLs itself at the precise point, inside its K-th publication;
the restart publishes at start, as ``nof0 run`` does, and redoes the batch it had not acknowledged."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from tests.conftest import REPO
from tests.trades.outbox_session import expected_ops


def _session(pg_dsn: str, redis_url: str, prefix: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.trades.outbox_session", pg_dsn, redis_url, prefix, *extra],
                          cwd=REPO, env={**os.environ, "NOF0_LOG_LEVEL": "error"}, capture_output=True, text=True,
                          timeout=180)


def _outbox(pg_dsn: str) -> list[tuple[str, list[str]]]:
    with psycopg.connect(pg_dsn) as conn:
        return [(f"{seq}-0", fields) for seq, fields in conn.execute("SELECT seq, fields FROM trade_outbox ORDER BY seq")]


def _stream(redis_sync, prefix: str) -> list[tuple[str, list[str]]]:
    return [(i.decode(), [x.decode() for kv in e.items() for x in kv])
            for i, e in redis_sync.xrange(f"{prefix}:trades:stream")]


@pytest.mark.parametrize("point, at", [("before-xadd", 3), ("after-xadd", 3), ("before-xadd", 6)])
def test_kill9_between_commit_and_publish_then_restart(pg_dsn, test_servers, redis_prefix, redis_sync, point, at):
    killed = _session(pg_dsn, test_servers.redis_url, redis_prefix, "--die", point, "--at", str(at))
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert killed.stdout.splitlines()[-1] == f"committed {at - 1}"  # the batch that committed was not acknowledged
    committed = _outbox(pg_dsn)
    published = _stream(redis_sync, redis_prefix)
    assert len(committed) == 2 * at - 1  # batch at's add and update are committed...
    if point == "before-xadd":  # ...and are missing from the stream
        assert published == committed[:-2]
    else:  # ...and were published, but the watermark was not raised
        assert published == committed
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT seq FROM trade_outbox_published").fetchone()[0] == 2 * at - 3

    again = _session(pg_dsn, test_servers.redis_url, redis_prefix, "--from", str(at))
    assert again.returncode == 0 and again.stdout.rstrip().endswith("done"), again.stderr[-3000:]
    stream = _stream(redis_sync, redis_prefix)
    assert stream == _outbox(pg_dsn)  # every committed entry, once, in seq order
    assert [(dict(zip(f[::2], f[1::2]))["op"], dict(zip(f[::2], f[1::2]))["id"]) for _, f in stream] == expected_ops()
    assert len({i for i, _ in stream}) == len(stream)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT seq FROM trade_outbox_published").fetchone()[0] == len(stream)
    for n in range(1, 7):  # every add published for the first time set its guard
        assert redis_sync.get(f"{redis_prefix}:ingest:trade:t{n}") == b"seen"
