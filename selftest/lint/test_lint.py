"""Lint and types are tests: ruff (lint and format) and mypy over the installed package's source
(``hil/`` and ``fixtures/``), configured in pyproject.toml, with zero findings."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("hil", "fixtures")
TIMEOUT = 300


def _run(args: list[str], cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
                          env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
                               "RUFF_CACHE_DIR": str(cache / "ruff"), "MYPY_CACHE_DIR": str(cache / "mypy")})


def _ruff() -> str:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: run .ci/install (it installs the [test] extras)")
    return ruff


def test_ruff_lint_finds_nothing(tmp_path: Path) -> None:
    result = _run([_ruff(), "check", "--no-fix", *SOURCES], tmp_path)
    assert result.returncode == 0, f"ruff check {' '.join(SOURCES)}:\n{result.stdout[-6000:]}{result.stderr[-2000:]}"


def test_ruff_format_is_applied(tmp_path: Path) -> None:
    result = _run([_ruff(), "format", "--check", "--diff", *SOURCES], tmp_path)
    assert result.returncode == 0, f"run `ruff format {' '.join(SOURCES)}`:\n{result.stdout[-6000:]}{result.stderr[-2000:]}"


def test_mypy_finds_nothing(tmp_path: Path) -> None:
    result = _run([sys.executable, "-m", "mypy"], tmp_path)  # files and options: [tool.mypy]
    assert result.returncode == 0, f"mypy:\n{result.stdout[-8000:]}{result.stderr[-2000:]}"
    assert "Success: no issues found" in result.stdout, result.stdout
