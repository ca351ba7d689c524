"""pytest plugin of bench/mutation_select.py's map run (``-p mutation_contexts``): before each test's
setup, call and teardown, tell every virtual board this pytest process started (``python -m hil.sim``
children, found in /proc) which test is running, so the lines the board's own process runs are
labelled with it (hil.sim.measure; the boards measure themselves when HIL_SIM_COVERAGE is set).

A board that cannot be told fails the test: a map with lines labelled by the wrong test would make
mutants look survived."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.sim.power import PowerSwitch


def _boards() -> Iterator[Path]:
    """The control sockets of this process's virtual boards (its ``python -m hil.sim`` children)."""
    me = os.getpid()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if parent != me or b"hil.sim" not in argv or b"--state-dir" not in argv:
            continue
        state_dir = argv[argv.index(b"--state-dir") + 1].decode()
        yield Path(state_dir) / "control.sock"


def _label(nodeid: str) -> None:
    for control in _boards():
        if control.exists():  # a board still starting has no socket yet: it runs nothing of a test
            PowerSwitch(control).request("coverage_context", test=f"{nodeid}|board")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _label(item.nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    _label(item.nodeid)  # the first test's board was started by its own setup


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    _label(item.nodeid)
