"""The example team repo (examples/team-bench) run the way a team runs it: in its own folder outside
this repo, with the harness installed from this source by ``pip install <repo>`` (not editable) into
a fresh virtual environment, and nothing of this checkout on ``sys.path``.

What it proves: the wheel ships every module and data file of the harness, the ``pytest11`` entry
points alone bring in fixtures, markers and options (the example has no conftest.py), a repo with
no firmware_builds/ gets the reference images and fresh TEST ONLY keys built on first use, and the
report lands in the team repo's reports/.

The venv gets its third-party dependencies from the package index pip is configured with
(``pip install`` resolves hil's declared dependencies, so an undeclared one fails here). Offline,
``HIL_SELFTEST_VENV_DEPS=host`` lets the venv see this interpreter's site-packages instead, as plain
path entries: their ``.pth`` files (the editable install of hil) are not run, so the venv still
imports only its own hil. Building hil itself needs setuptools and wheel from the index either way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import xml.etree.ElementTree as ET
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomli (a dependency of pytest there) is what became tomllib
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "team-bench"
INSTALL_TIMEOUT = 600
RUN_TIMEOUT = 300
# Top-level entries of the checkout that are not inputs of the package build (generated, caches,
# or repo-only data): left out of the copy pip builds from.
NOT_BUILD_INPUTS = {
    ".git",
    "reports",
    "captures",
    "firmware_builds",
    "build",
    "dist",
    ".hil",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".pytest_cache",
    ".venv",
    "venv",
}

PROBE = r"""
import importlib, importlib.metadata, json, pkgutil, sys, sysconfig
import hil, hil.fixtures.boards, hil.plugin
for name in sorted(m.name for m in pkgutil.walk_packages(hil.__path__, "hil.")):
    importlib.import_module(name)
print(json.dumps({
    "purelib": sysconfig.get_paths()["purelib"],
    "sys_path": sys.path,
    "hil": hil.__file__,
    "fixtures_boards": hil.fixtures.boards.__file__,
    "modules": {n: getattr(m, "__file__", None) for n, m in sys.modules.items() if n == "hil" or n.startswith("hil.")},
    "direct_url": json.loads(importlib.metadata.distribution("hil").read_text("direct_url.json") or "null"),
}))
"""


def _clean_env() -> dict[str, str]:
    """This process's environment without anything that points into this checkout or steers pytest,
    the harness or esptool (pip's own configuration stays: it says where the index is)."""
    drop = ("PYTEST_", "HIL_", "ESPTOOL_")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(drop) and k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}
    }
    env["PYTHONNOUSERSITE"] = "1"  # no ~/.local site-packages either
    return env


def _run(cmd: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout, check=False)


def _ok(result: subprocess.CompletedProcess[str], what: str) -> str:
    tail = f"{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    assert result.returncode == 0, f"{what} exited {result.returncode}:\n{tail}"
    return result.stdout


def _package_dirs() -> dict[str, str]:
    """Package name -> source folder, as pyproject.toml maps them (``[tool.setuptools.package-dir]``)."""
    doc = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(doc["tool"]["setuptools"]["package-dir"])


def _copy_source(dest: Path) -> Path:
    """The checkout as a clone would have it, minus generated folders: pip builds in the copy, so
    build/ and *.egg-info never land in this repo."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__" or n.endswith((".egg-info", ".pyc"))}
        if Path(folder) == REPO:
            skipped |= NOT_BUILD_INPUTS & set(names)
        return skipped

    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)
    return dest


def _make_venv(venv: Path) -> Path:
    _ok(_run([sys.executable, "-m", "venv", str(venv)], cwd=venv.parent, timeout=INSTALL_TIMEOUT), "python -m venv")
    python = venv / "bin" / "python"
    if os.environ.get("HIL_SELFTEST_VENV_DEPS", "install") == "host":
        purelib = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
        host = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
        # Plain directory lines: appended to sys.path after the venv's own site-packages, and the
        # .pth files inside them (the host's editable hil finder) are not processed.
        (purelib / "zz_host_site_packages.pth").write_text("\n".join(host) + "\n", encoding="utf-8")
    return python


def _installed_outside(probe: dict, venv: Path) -> list[str]:
    return [
        f"{name}: {path}"
        for name, path in sorted(probe["modules"].items())
        if path is not None and not Path(path).resolve().is_relative_to(venv.resolve())
    ]


def _missing_files(source: Path, purelib: Path) -> list[str]:
    """Files of the package source (modules and data) that the installed package lacks."""
    missing = []
    for package, folder in _package_dirs().items():
        root = source / folder
        target = purelib.joinpath(*package.split("."))
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if path.is_dir() or "__pycache__" in rel.parts or path.suffix == ".pyc":
                continue
            if not (target / rel).is_file():
                missing.append(f"{folder}/{rel.as_posix()} (package {package})")
    return missing


def _scenario_names() -> set[str]:
    names = set()
    for path in sorted((EXAMPLE / "tests").glob("test_*.py")):
        names |= set(re.findall(r"^def (test_\w+)\(", path.read_text(encoding="utf-8"), re.MULTILINE))
    return names


def test_example_repo_passes_with_the_installed_harness(tmp_path: Path) -> None:
    assert not tmp_path.resolve().is_relative_to(REPO), f"{tmp_path} is inside the repo: run with another basetemp"
    timings = {}
    start = time.monotonic()

    source = _copy_source(tmp_path / "hil-src")
    team = tmp_path / "team-bench"
    shutil.copytree(
        EXAMPLE,
        team,
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "reports", "captures", "firmware_builds"),
    )
    python = _make_venv(tmp_path / "venv")
    _ok(
        _run([str(python), "-m", "pip", "install", "-q", str(source)], cwd=tmp_path, timeout=INSTALL_TIMEOUT),
        "pip install <hil source>",
    )
    # The team repo's own pyproject.toml installs (dependencies only); its `hil` is the one above.
    _ok(
        _run([str(python), "-m", "pip", "install", "-q", "-e", str(team)], cwd=team, timeout=INSTALL_TIMEOUT),
        "pip install -e <team repo>",
    )
    timings["venv + install"] = time.monotonic() - start

    # The venv imports its own hil, every module of it, and nothing of this checkout.
    probe = json.loads(_ok(_run([str(python), "-c", PROBE], cwd=team, timeout=120), "import probe").splitlines()[-1])
    purelib = Path(probe["purelib"])
    direct = probe["direct_url"] or {}
    assert direct.get("url") == source.as_uri() and not direct.get("dir_info", {}).get("editable"), direct
    assert Path(probe["hil"]).resolve().is_relative_to(purelib.resolve()), f"hil imported from {probe['hil']}"
    assert Path(probe["fixtures_boards"]).resolve() == (purelib / "hil" / "fixtures" / "boards.py").resolve(), (
        f"hil.fixtures.boards imported from {probe['fixtures_boards']}"
    )
    outside = _installed_outside(probe, tmp_path / "venv")
    assert not outside, "hil modules imported from outside the venv:\n" + "\n".join(outside)
    on_path = [p for p in probe["sys_path"] if p and Path(p).resolve().is_relative_to(REPO)]
    assert not on_path, f"the checkout is on the venv's sys.path: {on_path}"
    missing = _missing_files(source, purelib)
    assert not missing, "not installed by `pip install` (pyproject.toml [tool.setuptools] tables):\n" + "\n".join(
        missing
    )

    # The team's run: plain pytest in the team repo. --hil-virtual only so that a developer's
    # attached board is never flashed by a self-test (without boards it is what the harness picks).
    mark = time.monotonic()
    result = _run([str(python), "-m", "pytest", "--hil-virtual", "-rA"], cwd=team, timeout=RUN_TIMEOUT)
    timings["example run"] = time.monotonic() - mark
    output = _ok(result, "pytest in the team repo")
    assert f"rootdir: {team}" in output and "configfile: pyproject.toml" in output, output[-3000:]

    junit = ET.parse(team / "reports" / "junit.xml").getroot()
    cases = {
        case.get("name"): [child.tag for child in case if child.tag in {"failure", "error", "skipped"}]
        for case in junit.iter("testcase")
    }
    assert set(cases) == _scenario_names(), f"ran {sorted(cases)}, the example has {sorted(_scenario_names())}"
    assert not any(cases.values()), f"not passed: { {n: t for n, t in cases.items() if t} }\n{output[-4000:]}"
    assert re.search(rf"\b{len(cases)} passed\b", output), output[-3000:]

    report = team / "reports" / "report.html"
    assert report.is_file() and "hil security report" in report.read_text(encoding="utf-8", errors="replace")
    environment = json.loads((team / "reports" / "environment.json").read_text(encoding="utf-8"))
    assert environment["boards"] and all(name.startswith("virtual") for name in environment["boards"]), environment
    # A repo without firmware_builds/ got the reference set, signed with fresh TEST ONLY keys.
    assert (team / "firmware_builds" / "index.json").is_file()
    assert "TEST ONLY" in (team / "firmware_builds" / "keys" / "device-master-key.hex").read_text(encoding="ascii")
    print(", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def test_example_is_a_plain_team_repo() -> None:
    """Pytest configuration, a README and scenarios; no conftest.py: the entry points are enough."""
    assert {p.name for p in EXAMPLE.iterdir()} >= {"pyproject.toml", "README.md", "tests"}
    assert not list(EXAMPLE.rglob("conftest.py")), "the example must work from the entry points alone"
