"""Run every benchmark in this folder (``make bench``), one process each, printing their figures.

Each ``*_bench.py`` (ingest, analytics, api, feed, sim fill, scale) measures its own baseline in the same run and prints the
ratio; see README.md.
Extra arguments are not passed through: run a script directly to tune it (``SHORT`` shortens the API
soak to 2 minutes). The last lines are one table of every ``goal ...`` line the scripts printed.

A missed goal is a result, not a failure: the exit status is non-zero only when a script failed (a
non-zero exit of its own, which the scripts keep for errors). A script without a ``goal`` line gets a
row saying so in the table.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


# arguments ``make bench`` gives a script so the whole run stays under 15 minutes
SHORT = {"api_soak_bench.py": ["--minutes", "2"]}


def main() -> int:
    here = Path(__file__).resolve().parent
    failed: list[str] = []
    total = time.monotonic()
    goals: list[tuple[str, str]] = []
    for script in sorted(here.glob("*_bench.py")):
        print(f"\n=== {script.name}", flush=True)
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, str(script), *SHORT.get(script.name, [])], cwd=here.parent,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:  # shown as it comes, kept for the table
            print(line, end="", flush=True)
            if line.startswith("goal"):
                goals.append((script.name, line.strip()))
        code = proc.wait()
        if code != 0:
            failed.append(f"{script.name} (exit {code})")
            goals.append((script.name, f"error: exit status {code} (output above)"))
        elif not any(name == script.name for name, _ in goals):
            goals.append((script.name, "(no goal line printed: figures above)"))
        print(f"({script.name}: {time.monotonic() - started:.0f} s)", flush=True)
    print("\n=== goals (issue 13 and the engine's), each measured beside its baseline in the same run")
    width = max((len(name) for name, _ in goals), default=10)
    for name, line in goals:
        print(f"{name:<{width}}  {line}")
    print(f"({time.monotonic() - total:.0f} s in all)")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
