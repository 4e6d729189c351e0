"""The architecture holds: imports between the project's packages point down only, and no module imports
itself through others (no file cycles). docs/architecture.md draws the same picture.

A small AST walk rather than import-linter or grimp: it needs no dependency, reads every import (including
the ones inside functions and under ``TYPE_CHECKING``, which hide a cycle without removing it) and its
failure message names the offending file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Package -> the project packages it may import (besides itself). Bottom to top.
ALLOWED: dict[str, set[str]] = {
    "layers": set(),  # the registry: pure data
    "twin": {"layers"},  # the core: settings, database, CRS, errors, access, analyses, quality
    "ingest": {"twin", "layers"},  # the load path
    "frontend": {"twin", "layers"},  # the map's page and assets; no route code
    "api": {"twin", "layers", "frontend"},  # the HTTP layer
    "demo": {"ingest", "twin", "layers"},  # the demo-data generator, beside the load path, not on it
    "cli": {"api", "demo", "ingest", "frontend", "twin", "layers"},  # the command line, on top
}
PACKAGES = set(ALLOWED)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:  # Alembic revisions stand alone; they import nothing of ours
                continue
            found[_module_name(path)] = path
    return found


def _imports(path: Path, module: str, known: dict[str, Path]) -> list[tuple[str, int]]:
    """The project modules ``path`` imports, with the line of each import."""
    out: list[tuple[str, int]] = []
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, *([base] if base else [])])
            # `from a.b import c` imports the module a.b.c when there is one, else a name of a.b
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            if target.split(".")[0] not in PACKAGES:
                continue
            # the deepest known module the dotted name lies in
            parts = target.split(".")
            while parts and ".".join(parts) not in known:
                parts.pop()
            if parts:
                out.append((".".join(parts), node.lineno))
    return out


def _graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, int]]]]:
    known = _modules()
    return known, {m: _imports(p, m, known) for m, p in known.items()}


def test_the_packages_under_watch_exist() -> None:
    for package in PACKAGES:
        assert (ROOT / package / "__init__.py").is_file(), f"{package}/ is missing or not a package"
    # and every top-level Python package of the project is under watch
    tops = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench", "scripts", "docs"}
    assert tops <= PACKAGES, f"packages without an architecture rule: {sorted(tops - PACKAGES)}"


def test_imports_point_down_only() -> None:
    known, graph = _graph()
    upward = []
    for module, imports in graph.items():
        top = module.split(".")[0]
        for target, line in imports:
            other = target.split(".")[0]
            if other != top and other not in ALLOWED[top]:
                upward.append(f"{known[module].relative_to(ROOT)}:{line} imports {target} ({top} may import "
                              f"{', '.join(sorted(ALLOWED[top])) or 'nothing of the project'})")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))


def _cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a file cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    edges = {m: sorted({t for t, _ in imps if t != m}) for m, imps in graph.items()}

    def visit(start: str) -> None:  # iterative, so that a deep chain cannot hit the recursion limit
        nonlocal counter
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            succ = edges.get(node, [])
            if i < len(succ):
                work.append((node, i + 1))
                nxt = succ[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])

    for m in sorted(edges):
        if m not in index:
            visit(m)
    return out


def test_no_file_cycles() -> None:
    _, graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, "modules that import each other (directly or through others):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_the_checker_sees_what_it_must() -> None:
    """The walk itself is checked on a made-up graph: a cycle is found, a chain is not."""
    chain = {"a": [("b", 1)], "b": [("c", 1)], "c": []}
    assert _cycles(chain) == []
    loop = {"a": [("b", 1)], "b": [("c", 1)], "c": [("a", 1)], "d": [("a", 1)]}
    assert _cycles(loop) == [["a", "b", "c"]]
    # and it reads imports inside functions (a lazy import still points somewhere)
    known, graph = _graph()
    assert any(graph.values()), "no imports found at all: the walk is broken"
