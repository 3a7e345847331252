"""The command line as a new user meets it: the README's table, ``--version``, one JSON log format."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from importlib.metadata import version

import httpx

from nof0.cli import build_parser, main
from tests.conftest import ETC, REPO


def _subcommands() -> set[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return set(sub.choices)


def test_every_command_is_in_the_readme_table():
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    first_cells = [row.split("|")[1] for row in table.splitlines() if row.startswith("| `nof0")]
    listed = {name for cell in first_cells for name in re.findall(r"`nof0 ([a-z-]+)", cell)}
    assert _subcommands() <= listed, f"missing from README.md's table: {sorted(_subcommands() - listed)}"
    assert "| `nof0 --version` |" in table


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"nof0 {version('nof0')}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_everything_the_process_logs_is_one_json_format(pg_dsn, test_servers, redis_prefix, tmp_path):
    """nof0's own lines and the libraries' (uvicorn's above all) are JSON objects with the same keys."""
    from tests.api.conftest import config_with_prefix

    manifest = config_with_prefix(tmp_path, redis_prefix)
    port = _free_port()
    env = {**os.environ, "NOF0_POSTGRES_DSN": pg_dsn, "NOF0_REDIS_URL": test_servers.redis_url,
           "NOF0_LOG_LEVEL": "info"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from nof0.cli import main; raise SystemExit(main())", "--config", str(manifest),
         "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        for line in proc.stderr:  # until the API says it listens (its own log line: an event, not a sleep)
            lines.append(line)
            if '"api listening"' in line:
                break
        assert any('"api listening"' in x for x in lines), "".join(lines)
        assert httpx.get(f"http://127.0.0.1:{port}/api/crypto-prices").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        lines += proc.stderr.read().splitlines(keepends=True)  # the same reader: nothing buffered is lost
        proc.wait(timeout=30)
    lines = [x for x in lines if x.strip()]
    assert lines, "nothing logged"
    records = []
    for x in lines:
        try:
            records.append(json.loads(x))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON log line: {x!r}") from None
    assert all({"event", "level", "timestamp", "logger"} <= r.keys() for r in records), records
    assert any(r.get("logger", "").startswith("uvicorn") for r in records), records  # uvicorn's, as JSON
