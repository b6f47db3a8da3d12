"""Find import circles in a package, counting the imports inside functions.

``lint-imports`` checks the layers; this plain scan of the source checks that no two
modules import each other through any chain, at module level or inside a function (a
lazy import only moves a circle from import time to the first call). Imports under
``if TYPE_CHECKING:`` count too: a reader follows them like any other. An import of
``pkg.mod`` is an edge to ``pkg.mod`` only, not to the packages above it, as import-linter
counts it; ``importlib.import_module("...")`` with a string is not seen.

    python tools/import_circles.py src/gankit

Prints each circle (a strongly connected set of modules, with one chain through it) and
exits 1 if there is one; exits 0 and prints the count of modules and imports otherwise.
Standard library only, so that it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def module_names(root: Path) -> dict[str, Path]:
    """Every module under the package folder ``root``, by dotted name."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that module ``name`` (its file ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 packages
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from pkg import mod`` imports the module pkg.mod where there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]  # fmt: skip
        out.update(t for t in targets if t in known and t != name)
    return out


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected sets of more than one module (Tarjan's algorithm,
    iterative so that a deep package cannot reach Python's recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def chain(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """One circle through ``group``: a shortest path from its first module back to it."""
    members, first = set(group), group[0]
    paths = {child: [first, child] for child in sorted(graph[first]) if child in members}
    frontier = list(paths)
    while first not in paths:
        step = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child in members and child not in paths:
                    paths[child] = [*paths[node], child]
                    step.append(child)
        frontier = step
    return paths[first]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", type=Path, help="the package folder, e.g. src/gankit")
    args = parser.parse_args(argv)
    known = module_names(args.package)
    graph = {name: imported(name, path, known) for name, path in known.items()}
    found = circles(graph)
    for group in found:
        print(f"import circle among {len(group)} modules: {' -> '.join(chain(graph, group))}")
    if found:
        return 1
    edges = sum(len(targets) for targets in graph.values())
    print(f"no import circle: {len(graph)} modules, {edges} imports (lazy ones included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
