"""Fixtures of the image builder self-tests: one default-size build shared by the session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hil.images.build import build_images
from hil.images.index import Index


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Index:
    """A full default build (1 MiB apps, esp32) in a temporary directory, with fresh keys."""
    return build_images(tmp_path_factory.mktemp("fb"), force=True).index


@pytest.fixture
def small_out(tmp_path: Path, built: Index) -> Path:
    """An empty build directory that already holds a copy of the session's keys (no key generation)."""
    out = tmp_path / "out"
    shutil.copytree(built.directory / "keys", out / "keys")
    return out
