"""The import graph of the installed package, read from the source (no module is imported).

Every import counts: module level, ``if TYPE_CHECKING:`` and inside functions, because each is a
dependency a reader has to follow and a lazy import only hides a cycle until someone moves it.
Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``; those package edges count too,
except a module's own ancestors (they are already being imported when it runs).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# package name -> source folder, as pyproject.toml's [tool.setuptools.package-dir] maps them
SOURCE_ROOTS: dict[str, Path] = {"hil": ROOT / "hil", "hil.fixtures": ROOT / "fixtures"}


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@dataclass
class ImportGraph:
    """Modules of the package (name -> file) and who imports whom (name -> names)."""

    modules: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, roots: dict[str, Path] = SOURCE_ROOTS) -> ImportGraph:
        modules: dict[str, Path] = {}
        for package, folder in roots.items():
            for path in sorted(folder.rglob("*.py")):
                rel = path.relative_to(folder).with_suffix("").parts
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                modules[".".join((package, *rel))] = path
        graph = cls(modules)
        for name, path in modules.items():
            graph.edges[name] = set(graph._imports_of(name, path))
        return graph

    def _resolve(self, name: str) -> str | None:
        """The package module *name* refers to (a module, or the module defining an imported name)."""
        while name and name not in self.modules:
            name = name.rpartition(".")[0]
        return name or None

    def _imports_of(self, name: str, path: Path) -> Iterator[str]:
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in self.modules else base
                           for alias in node.names]
            for target in targets:
                resolved = self._resolve(target)
                if resolved is None or resolved == name:
                    continue
                yield resolved
                own = set(_ancestors(name))
                yield from (a for a in _ancestors(resolved) if a not in own and a in self.modules)

    def cycles(self) -> list[list[str]]:
        """Strongly connected components of more than one module (Tarjan, iterative)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []
        for start in sorted(self.modules):
            if start in index:
                continue
            work = [(start, iter(sorted(self.edges[start])))]
            index[start] = low[start] = len(index)
            stack.append(start)
            on_stack.add(start)
            while work:
                node, children = work[-1]
                child = next(children, None)
                if child is not None:
                    if child not in index:
                        index[child] = low[child] = len(index)
                        stack.append(child)
                        on_stack.add(child)
                        work.append((child, iter(sorted(self.edges[child]))))
                    elif child in on_stack:
                        low[node] = min(low[node], index[child])
                    continue
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
        return found

    def path(self, source: str, target: str) -> list[str]:
        """A shortest import chain from *source* to *target* (empty if there is none)."""
        previous: dict[str, str] = {}
        frontier = [source]
        seen = {source}
        while frontier:
            nxt = []
            for node in frontier:
                for child in sorted(self.edges[node]):
                    if child in seen:
                        continue
                    seen.add(child)
                    previous[child] = node
                    if child == target:
                        chain = [target]
                        while chain[-1] != source:
                            chain.append(previous[chain[-1]])
                        return chain[::-1]
                    nxt.append(child)
            frontier = nxt
        return []
