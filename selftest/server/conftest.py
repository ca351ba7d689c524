"""Fixtures for the reference-server self-tests: a fake clock and app/client factories."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from flask import Flask
from helpers_server import FakeClock, make_config

from hil.server import close_app, create_app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_app(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., Flask]]:
    """``make_app(defects=(), **config_overrides)``; every app is closed at teardown."""
    apps: list[Flask] = []

    def factory(defects: tuple[str, ...] = (), **overrides: Any) -> Flask:
        db_dir = tmp_path / f"app{len(apps)}"
        db_dir.mkdir()
        app = create_app(make_config(db_dir, clock, **overrides), defects=defects)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        close_app(app)


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> Any:
    return make_app().test_client()
