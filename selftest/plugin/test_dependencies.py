"""Every third-party module the harness imports comes from a distribution pyproject declares.

A module that arrives only as another package's dependency breaks on the day that package's
range allows a release without it: ``esp_pylib`` (imported by ``hil.flashing``) ships with
esptool only from 5.4, while pyproject allowed esptool 5.1.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).parents[2]
FIRST_PARTY = {"hil", "fixtures"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_normal(re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]) for req in project["dependencies"]}


def _runtime_imports(node: ast.AST) -> list[str]:
    """Modules imported at run time (lazy ones too), not under ``if TYPE_CHECKING:`` (mypy's)."""
    if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
        return [name for child in node.orelse for name in _runtime_imports(child)]
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module] if node.level == 0 and node.module else []
    return [name for child in ast.iter_child_nodes(node) for name in _runtime_imports(child)]


def _imported() -> dict[str, str]:
    """Top-level third-party module -> a file importing it."""
    found: dict[str, str] = {}
    for path in sorted([*(ROOT / "hil").rglob("*.py"), *(ROOT / "fixtures").rglob("*.py")]):
        for name in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_library_is_a_declared_dependency() -> None:
    providers = importlib.metadata.packages_distributions()
    declared = _declared()
    undeclared = {
        module: (where, providers.get(module, ["not installed"]))
        for module, where in _imported().items()
        if not {_normal(dist) for dist in providers.get(module, [])} & declared
    }
    assert not undeclared, f"imported but not declared in pyproject [project] dependencies: {undeclared}"
