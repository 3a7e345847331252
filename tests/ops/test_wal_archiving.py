"""The runbook's WAL archiving (docs/runbook.md "Backups"): deploy/postgres/archive-wal.sh as the
archive_command of a cluster the test starts archives its segments; the command itself copies
atomically, accepts a retry of the same segment and refuses to overwrite a different one."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from nof0.embedded import EmbeddedPostgres
from tests.conftest import REPO

SCRIPT = REPO / "deploy" / "postgres" / "archive-wal.sh"


@pytest.fixture
def short_tmp():
    d = Path(tempfile.mkdtemp(prefix="nof0w-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def archive(src: Path, name: str, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(SCRIPT), str(src), name, str(folder)], capture_output=True, text=True)


def test_the_command_copies_atomically_and_never_overwrites(short_tmp):
    folder = short_tmp / "archive"
    folder.mkdir()
    segment = short_tmp / "000000010000000000000007"
    segment.write_bytes(os.urandom(64 * 1024))
    assert archive(segment, segment.name, folder).returncode == 0
    assert (folder / segment.name).read_bytes() == segment.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == [segment.name]  # no temporary file left
    assert archive(segment, segment.name, folder).returncode == 0  # a retry of the same segment
    other = short_tmp / "other"
    other.write_bytes(os.urandom(1024))
    refused = archive(other, segment.name, folder)
    assert refused.returncode == 1 and "exists with other contents" in refused.stderr
    assert (folder / segment.name).read_bytes() == segment.read_bytes()
    missing = archive(short_tmp / "absent", "000000010000000000000008", folder)
    assert missing.returncode != 0 and not (folder / "000000010000000000000008").exists()


def test_a_cluster_archives_its_wal_with_it(short_tmp):
    folder = short_tmp / "wal-archive"
    folder.mkdir()
    folder.chmod(0o777)  # the server may run as another user (pgserver runs as `pgserver` under root)
    command = f"sh {SCRIPT} %p %f {folder}"
    pg = EmbeddedPostgres(short_tmp / "cluster")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, inside pgserver
        dsn = pg.start()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET wal_level = 'replica'")
            conn.execute("ALTER SYSTEM SET archive_mode = 'on'")
            conn.execute(sql.SQL("ALTER SYSTEM SET archive_command = {}").format(sql.Literal(command)))
        pg.stop()  # archive_mode takes a restart
        dsn = pg.start()
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SHOW archive_command").fetchone()[0] == command
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t SELECT generate_series(1, 1000)")
            segment = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
            conn.execute("SELECT pg_switch_wal()")
            deadline = time.monotonic() + 60
            # the archiver runs on its own schedule: its progress is only visible in pg_stat_archiver
            while True:
                row = conn.execute("SELECT last_archived_wal, failed_count, last_failed_wal FROM pg_stat_archiver"
                                   ).fetchone()
                if row[0] is not None and row[0] >= segment:
                    break
                assert row[1] == 0, f"archive_command failed on {row[2]}"
                assert time.monotonic() < deadline, "the segment was not archived within 60 s"
                time.sleep(0.2)
        archived = folder / segment
        assert archived.is_file() and archived.stat().st_size == 16 * 1024 * 1024
        assert not list(folder.glob(".*.tmp"))
    finally:
        pg.stop()
