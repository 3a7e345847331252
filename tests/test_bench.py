"""The benchmark scripts leave nothing behind (their embedded servers' folder is some 800 MB)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_the_analytics_bench_removes_its_data_folder(test_servers):
    env = {k: v for k, v in os.environ.items() if k != "NOF0_DATA_DIR"}
    env.update(NOF0_POSTGRES_DSN=test_servers.admin_dsn, NOF0_REDIS_URL=test_servers.redis_url)
    run = subprocess.run([sys.executable, str(REPO / "bench" / "analytics_bench.py"), "--models", "2",
                          "--trades", "20", "--repeat", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ratio job / SQL aggregate" in run.stdout
    removed = re.findall(r"^data folder (\S+) removed$", run.stdout, re.M)
    assert len(removed) == 1 and not Path(removed[0]).exists()
