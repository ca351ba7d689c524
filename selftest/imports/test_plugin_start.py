"""Every pytest process pays for what the plugins import at start (bench/overhead.py measures it):
the fixture modules and the packages the plugin reads stay free of the heavy libraries, whose
modules are imported by the fixtures and functions that use them."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# loaded by the tests that need them, never by starting pytest
HEAVY = ("scapy", "flask", "werkzeug", "esptool", "esp_pylib", "rich", "cryptography", "filelock", "imgtool")
# packages whose re-exports are imported on first use (hil.lazy); the plugin imports their leaf modules
LAZY_PACKAGES = ("hil.board", "hil.console", "hil.server")
START = """
import importlib, json, sys
import hil.plugin, hil.report.pytest_plugin
for name in hil.plugin.pytest_plugins:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def test_starting_the_plugins_imports_no_heavy_library() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    result = subprocess.run(
        [sys.executable, "-c", START], cwd=Path("/"), env=env, capture_output=True, text=True, timeout=60, check=True
    )
    loaded = {name.split(".")[0] for name in json.loads(result.stdout)}
    assert not loaded & set(HEAVY), f"the plugins' start imports {sorted(loaded & set(HEAVY))}"


def _type_checking_imports(path: Path) -> dict[str, tuple[str, str]]:
    """name -> (module, attribute) of the imports under ``if TYPE_CHECKING:``."""
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    found.update({a.asname or a.name: (stmt.module, a.name) for a in stmt.names})
    return found


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_lazy_package_exports_what_it_declares(package: str) -> None:
    """``__all__`` resolves, each declared (TYPE_CHECKING) name to the object its module defines."""
    module = importlib.import_module(package)
    declared = _type_checking_imports(Path(module.__file__ or ""))
    assert declared and set(declared) <= set(module.__all__)
    for name in module.__all__:
        value = getattr(module, name)
        if name in declared:
            source, attribute = declared[name]
            assert value is getattr(importlib.import_module(source), attribute), name
