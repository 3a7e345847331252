"""The repository's own text files carry no leftover merge-conflict markers (a docs page once shipped one)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_MARKER = re.compile(rb"^(<{7} |={7}$|>{7} )", re.M)


def test_no_file_in_the_repository_holds_a_conflict_marker():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True)
    if listed.returncode == 0:
        names = [n.decode() for n in listed.stdout.split(b"\0") if n]
    else:  # an unpacked archive, not a clone: every file but the local environment
        names = [str(p.relative_to(REPO)) for p in REPO.rglob("*")
                 if not {".venv", "var", ".git", "__pycache__"} & set(p.relative_to(REPO).parts)]
    hits = []
    for name in names:
        path = REPO / name
        if path.is_file() and path.suffix in {".py", ".md", ".sql", ".yaml", ".yml", ".json", ".tmpl", ".toml",
                                              ".html", ".js", ".css", ".txt", ""}:
            if m := _MARKER.search(path.read_bytes()):
                hits.append(f"{name}: {m.group(0)!r}")
    assert not hits, hits
