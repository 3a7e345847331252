"""Real nodes for the scale tests, started on free loopback ports in a temporary folder and always stopped:
a Redis Cluster of three masters (the machine's ``redis-server --cluster-enabled yes`` and
``redis-cli --cluster create``) and a Postgres 15 primary with a streaming replica (``initdb``,
``pg_basebackup -R``). Waits are on conditions with generous deadlines (a loaded 2-core machine)."""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DEADLINE_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_cluster_port() -> int:
    """A port P with P and its cluster bus port P + 10000 free (Redis needs P <= 55535)."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 45000)
        if _free(port) and _free(port + 10000):
            return port


def wait_for(check: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.1)
    raise TimeoutError(f"gave up waiting for {what} after {deadline_s:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(20)


@contextlib.contextmanager
def redis_cluster(masters: int = 3) -> Iterator[list[str]]:
    """Yields ``host:port`` of each master of a fresh cluster; every node is stopped on exit."""
    tmp = Path(tempfile.mkdtemp(prefix="nof0-cluster-"))
    procs: list[subprocess.Popen] = []
    nodes: list[str] = []
    try:
        for _ in range(masters):
            port = free_cluster_port()
            d = tmp / str(port)
            d.mkdir()
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(d / "nodes.conf"), "--dir", str(d), "--save", "",
                 "--appendonly", "no", "--cluster-node-timeout", "5000"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            nodes.append(f"127.0.0.1:{port}")
        for node in nodes:
            wait_for(lambda n=node: _redis_cli(n, "ping") == "PONG", f"redis node {node}")
        subprocess.run(["redis-cli", "--cluster", "create", *nodes, "--cluster-yes"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=DEADLINE_S)
        wait_for(lambda: all("cluster_state:ok" in _redis_cli(n, "cluster", "info") for n in nodes),
                 "cluster_state:ok on every node")
        yield nodes
    finally:
        for proc in procs:
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def _redis_cli(node: str, *args: str) -> str:
    host, _, port = node.rpartition(":")
    return subprocess.run(["redis-cli", "-h", host, "-p", port, *args], capture_output=True, text=True,
                          timeout=30).stdout.strip()


class PgNode:
    def __init__(self, data: Path, port: int, as_user: list[str]) -> None:
        self.data, self.port, self._as = data, port, as_user

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "log"), "-w", "-t", "120",
                  "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}", "start")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "120", "stop", check=False)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        subprocess.run([*self._as, str(PG_BIN / tool), *args], check=check, capture_output=True, timeout=300)


@contextlib.contextmanager
def postgres_pair() -> Iterator[tuple[PgNode, PgNode]]:
    """A primary and its streaming replica (hot standby); both stopped and removed on exit."""
    root = os.geteuid() == 0
    as_user = ["runuser", "-u", "postgres", "--"] if root else []
    tmp = Path(tempfile.mkdtemp(prefix="nof0-pg-"))
    if root:
        pw = pwd.getpwnam("postgres")
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    primary = PgNode(tmp / "primary", free_port(), as_user)
    replica = PgNode(tmp / "replica", free_port(), as_user)
    try:
        primary._run("initdb", "-D", str(primary.data), "-U", "postgres", "-A", "trust", "--no-sync")
        with open(primary.data / "postgresql.conf", "a") as conf:
            conf.write("wal_level = replica\nmax_wal_senders = 10\nhot_standby = on\nfsync = off\n")
        with open(primary.data / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        primary.start()
        primary._run("pg_basebackup", "-D", str(replica.data), "-h", "127.0.0.1", "-p", str(primary.port),
                     "-U", "postgres", "-R", "-X", "stream")
        replica.start()
        wait_for(lambda: _one(replica.dsn, "SELECT pg_is_in_recovery()") is True, "the replica in recovery")
        yield primary, replica
    finally:
        replica.stop("immediate")
        primary.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


def _one(dsn: str, sql: str) -> object:
    with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
        return conn.execute(sql).fetchone()[0]
