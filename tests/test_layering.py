"""The package's layering, read from the source's imports (function-level imports count): data
flows one way, there is no import circle, and the repository sends no reader outside itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "python"

# Each package of aim and the packages it may import (besides itself). The loops (train, eval,
# rl) stand on runtime; eval and train are peers; rl builds on eval's episodes, never on train.
ALLOWED = {
    "aim.errors": set(),
    "aim.process_settings": set(),
    "aim.config": {"aim.errors"},
    "aim.ops": {"aim.errors"},
    "aim.model": {"aim.ops", "aim.errors"},
    "aim.data": {"aim.ops", "aim.errors"},
    "aim.sim": {"aim.data", "aim.ops", "aim.errors"},
    "aim.runtime": {"aim.model", "aim.data", "aim.ops", "aim.config", "aim.errors"},
    "aim.train": {"aim.runtime", "aim.model", "aim.data", "aim.ops", "aim.config", "aim.errors"},
    "aim.eval": {"aim.runtime", "aim.model", "aim.data", "aim.sim", "aim.ops", "aim.config", "aim.errors"},
    "aim.rl": {"aim.eval", "aim.runtime", "aim.model", "aim.data", "aim.sim", "aim.ops", "aim.config",
               "aim.errors"},
    "aim.demo": {"aim.rl", "aim.eval", "aim.train", "aim.runtime", "aim.model", "aim.data", "aim.sim",
                 "aim.ops", "aim.config", "aim.errors", "aim.process_settings"},
    "aim.cli": {"aim.demo", "aim.rl", "aim.eval", "aim.train", "aim.runtime", "aim.model", "aim.data",
                "aim.sim", "aim.ops", "aim.config", "aim.errors", "aim.process_settings"},
}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the aim modules it imports anywhere in its source. ``from pkg import sub`` of a
    submodule counts as importing the submodule only."""
    edges = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "aim":
                submodules = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
                found.update(submodules if len(submodules) == len(node.names) else [node.module, *submodules])
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] == "aim")
        edges[name] = {m for m in found if m in modules and m != name}
    return edges


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


@pytest.fixture(scope="module")
def edges():
    return _imports(_modules())


def test_no_module_imports_in_a_circle(edges):
    assert _cycle(edges) is None, " -> ".join(_cycle(edges))


def test_packages_import_only_the_layers_below(edges):
    wrong = sorted({(_package(a), _package(b)) for a, targets in edges.items() for b in targets
                    if _package(a) != _package(b) and _package(b) not in ALLOWED[_package(a)]})
    assert not wrong, f"imports across layers: {wrong}"
    packages = {_package(m) for m in edges if m != "aim"}
    assert packages <= set(ALLOWED), f"packages without a layer: {sorted(packages - set(ALLOWED))}"


def test_the_repository_names_no_document_outside_itself():
    outside = re.compile(r"\.\./shared|shared/spec|spec §")
    tracked = [p for p in REPO.rglob("*") if p.is_file() and p.suffix in {".py", ".md", ".sh", ".cu", ".cuh", ".h",
                                                                          ".cpp", ".yaml", ".toml", ".txt", ".cmake"}
               and not {".venv", "build", ".git", ".pytest_cache"} & set(p.relative_to(REPO).parts)
               and p != Path(__file__).resolve()]
    named = [str(p.relative_to(REPO)) for p in tracked if outside.search(p.read_text(errors="ignore"))]
    assert not named, f"files that send readers outside the repository: {named}"
