"""The hil pytest plugin (entry point ``pytest11``): options, settings, markers.

Options, ini keys use the ``hil`` prefix (``--hil-…``, ``hil_…``); parsed settings live in
``config.stash``. The fixture modules (the top-level ``fixtures/`` folder, installed as
``hil.fixtures``) are registered here, so a team's repo needs no conftest. The report (STRIDE
matrix, measurements, environment) is the ``hil_report`` entry point.
"""

from __future__ import annotations

import os

import pytest

from hil import tiers
from hil.options import register_options
from hil.plugin import defect_proof
from hil.plugin.markers import MARKERS, check_firmware, check_needs
from hil.settings import ALL_OPTIONS, SETTINGS_KEY, HilSettings, settings

# Fixture modules, registered with this plugin (pytest imports them when it registers hil.plugin).
pytest_plugins = [
    "hil.fixtures.firmware",
    "hil.fixtures.boards",
    "hil.fixtures.servers",
    "hil.fixtures.captures",
    "hil.fixtures.provisioning",
    "hil.fixtures.attacker",
    "hil.fixtures.ota",
    "hil.fixtures.coap",
    "hil.fixtures.wire",
    "hil.plugin.invariants",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    register_options(parser, ALL_OPTIONS + defect_proof.OPTIONS)


# pyserial's rfc2217 client (every virtual or remote board) calls Thread.setDaemon/setName; fixed
# upstream, not yet released. Filtered here, so a team's repo does not have to copy the line.
WARNING_FILTERS: tuple[str, ...] = (r"ignore:set(Daemon|Name)\(\) is deprecated:DeprecationWarning:serial.rfc2217",)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    for line in WARNING_FILTERS:
        config.addinivalue_line("filterwarnings", line)
    config.stash[SETTINGS_KEY] = s = HilSettings.from_config(config)
    if s.require_hardware and not hasattr(config, "workerinput"):  # xdist workers: the controller checked
        _check_hardware(s)
    if not hasattr(config, "workerinput"):
        from hil.plugin.firmware_chip import check_sim_chip
        from hil.plugin.workers import check_worker_count

        check_worker_count(config, s)  # -n above the real boards: refused before any worker starts
        check_sim_chip(s)  # a team's index for another chip than the virtual boards': refused too


def _check_hardware(s: HilSettings) -> None:
    """``--hil-require-hardware``: a usage error at session start unless a real board is configured or
    detected (the board fixture checks again, for a board that went away)."""
    from hil.board.inventory import InventoryError, inventory, no_hardware_message

    if s.virtual:
        raise pytest.UsageError(
            "--hil-virtual and --hil-require-hardware contradict each other: "
            "give one (virtual boards, or real boards only)"
        )
    try:
        boards = inventory(s.ports, s.boards_file)
    except InventoryError as exc:
        raise pytest.UsageError(str(exc)) from exc
    if not boards:
        raise pytest.UsageError(no_hardware_message(s.ports, s.boards_file))


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker per board the run can use (see :mod:`hil.plugin.workers`), unless
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` says otherwise (then xdist's own rule answers)."""
    from hil.plugin.workers import auto_workers

    return None if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") else auto_workers(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    check_needs(items)
    check_firmware(items)
    if any(defect_proof.declared_defects(item) for item in items):
        defect_proof.check_declared(items, _known_defects())
    defect_proof.select_for_proof(config, items, settings(config).defects)
    tiers.skip_slow(items, settings(config).slow)


def _known_defects() -> set[str]:
    """The defects of both catalogues; imported late, and only for a run whose tests claim defects
    (the board's catalogue comes with the virtual-board launcher): `hil --help` stays cheap too."""
    from hil.board.virtual import DEFECTS as BOARD_DEFECTS
    from hil.server.defects import CATALOGUE as SERVER_DEFECTS

    return {d.name for d in BOARD_DEFECTS} | {d.name for d in SERVER_DEFECTS}
