"""Run every benchmark in this folder (``make bench``), one process each, printing their figures.

Each ``*_bench.py`` (ingest, analytics, api, feed, sim fill) measures its own baseline in the same run and prints the
ratio; see README.md.
Extra arguments are not passed through: run a script directly to tune it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for script in sorted(here.glob("*_bench.py")):
        print(f"\n=== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=here.parent).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
