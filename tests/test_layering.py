"""Layers look down: every import of the package, read with ``ast`` (function-level imports included,
``if TYPE_CHECKING:`` blocks left out since they never run), against the layering of docs/design.md.

kernel (events, decoding, stages, clock) < domains < ingest service < engine; the write side never
imports the API (writers announce changes on the changes stream instead); only ``cli.py`` imports
the command modules, which never import it; and no module imports itself through others.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "nof0"

DOMAINS = ("prices", "market", "trades", "conversations", "traders", "sim", "analytics")
WRITE_SIDE = ("ingest", "jobs", "cache", "kernel", "importer", "engine", *DOMAINS)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every nof0 import that runs (``from a import b`` counts ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_only(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__"
              and node.args and isinstance(node.args[0], ast.Constant)):
            found.append((node.lineno, node.args[0].value))
    return [(line, m) for line, m in found if m == "nof0" or m.startswith("nof0.")]


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _under(module: str, *packages: str) -> bool:
    return any(module == f"nof0.{p}" or module.startswith(f"nof0.{p}.") for p in packages)


def _violations(rule) -> list[str]:
    out = []
    for name, imports in IMPORTS.items():
        for line, target in imports:
            if target in MODULES and rule(name, target):
                out.append(f"{MODULES[name].relative_to(SRC)}:{line} imports {target}")
    return sorted(set(out))


def test_the_write_side_never_imports_the_api():
    assert _violations(lambda m, t: _under(m, *WRITE_SIDE) and _under(t, "api")) == []


def test_the_kernel_imports_nothing_above_it():
    assert _violations(lambda m, t: _under(m, "kernel") and not _under(t, "kernel")) == []


def test_the_domains_never_import_the_service_the_engine_or_the_api():
    # a domain's commands.py is the command layer (above everything, beside cli.py), not the domain
    assert _violations(lambda m, t: _under(m, *DOMAINS) and not m.endswith(".commands")
                       and _under(t, "ingest", "engine", "api")) == []


def test_only_the_entry_point_imports_the_cli():
    assert _violations(lambda m, t: m != "nof0.cli" and t == "nof0.cli") == []


def test_no_module_imports_itself_through_others():
    graph = {name: {t for _, t in imports if t in MODULES and t != name} for name, imports in IMPORTS.items()}
    cycles, state = [], {}  # state: 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


@pytest.mark.parametrize("source, rule", [
    ("from nof0.api.invalidate import invalidate_api_payloads\n", "write side"),
    ("def f():\n    from nof0.cli import _with_runtime\n", "cli"),
])
def test_the_walk_sees_module_and_function_level_imports(tmp_path, source, rule):
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    targets = [t for _, t in _imports(probe)]
    assert ("nof0.api.invalidate" in targets) if rule == "write side" else ("nof0.cli" in targets)
    guarded = tmp_path / "guarded.py"
    guarded.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    " + source.replace("\n    ", "\n        "))
    assert _imports(guarded) == []
