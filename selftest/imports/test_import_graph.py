"""One clean import graph: no cycles, the virtual board apart from the harness, every module
importable on its own, and every package of the source shipped by pyproject.toml."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from import_graph import ROOT, SOURCE_ROOTS, ImportGraph

# The virtual board may use the format codecs (and the defect catalogue machinery), nothing of the
# harness side; the harness launches it from exactly one module.
SIM_MAY_IMPORT = ("hil.sim", "hil.protocol", "hil.images", "hil.defects")
SIM_LAUNCHERS = {"hil.board.virtual"}
IMPORT_TIMEOUT = 60


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return ImportGraph.read()


def _within(name: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_graph_sees_the_package(graph: ImportGraph) -> None:
    """Guards the tests below against reading an empty or wrong tree."""
    assert {"hil.plugin", "hil.fixtures.boards", "hil.sim.firmware.app"} <= set(graph.modules)
    assert "hil.settings" in graph.edges["hil.plugin"]


def test_no_import_cycles(graph: ImportGraph) -> None:
    cycles = graph.cycles()
    details = []
    for component in cycles:
        first, second = component[0], component[1]
        chain = graph.path(first, second) + graph.path(second, first)[1:]
        details.append(f"{len(component)} modules {component}: e.g. {' -> '.join(chain)}")
    assert not cycles, "import cycles (every import counts, TYPE_CHECKING and function-level too):\n" + \
        "\n".join(details)


def test_virtual_board_imports_nothing_of_the_harness(graph: ImportGraph) -> None:
    wrong = {name: sorted(t for t in targets if not _within(t, SIM_MAY_IMPORT))
             for name, targets in graph.edges.items() if _within(name, ("hil.sim",))}
    wrong = {name: targets for name, targets in wrong.items() if targets}
    assert not wrong, f"hil.sim may import only {SIM_MAY_IMPORT}; these import the harness side: {wrong}"


def test_harness_imports_the_sim_only_where_it_launches_boards(graph: ImportGraph) -> None:
    importers = {name for name, targets in graph.edges.items()
                 if not _within(name, ("hil.sim",)) and any(_within(t, ("hil.sim",)) for t in targets)}
    assert importers == SIM_LAUNCHERS, \
        f"modules outside hil.sim importing it: {sorted(importers)}; only {sorted(SIM_LAUNCHERS)} may"


def test_pyproject_ships_every_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    declared = set(config["packages"])
    on_disk = set()
    for package, folder in SOURCE_ROOTS.items():
        assert config["package-dir"][package] == folder.relative_to(ROOT).as_posix()
        on_disk |= {".".join((package, *init.parent.relative_to(folder).parts))
                    for init in folder.rglob("__init__.py")}
    assert declared == on_disk, f"missing from pyproject: {sorted(on_disk - declared)}; " \
                                f"listed but absent: {sorted(declared - on_disk)}"


def _import_alone(module: str) -> tuple[str, str | None]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    # from a folder outside the repo: the installed package, not the working tree on sys.path
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=Path("/"), env=env,
                            capture_output=True, text=True, timeout=IMPORT_TIMEOUT)
    return module, (result.stderr.strip().splitlines() or ["(no output)"])[-1] if result.returncode else None


def test_every_module_imports_on_its_own(graph: ImportGraph) -> None:
    """``python -c "import hil.X"`` in a fresh interpreter, for every module of the package."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        failures = {m: err for m, err in pool.map(_import_alone, sorted(graph.modules)) if err}
    assert not failures, "modules that fail to import alone:\n" + \
        "\n".join(f"  {m}: {err}" for m, err in sorted(failures.items()))
