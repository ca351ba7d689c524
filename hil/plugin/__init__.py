"""The hil pytest plugin (entry point ``pytest11``): options, settings, markers.

Options, ini keys use the ``hil`` prefix (``--hil-…``, ``hil_…``); parsed settings live in
``config.stash``. The fixture modules (the top-level ``fixtures/`` folder, installed as
``hil.fixtures``) are registered here, so a team's repo needs no conftest. The report (STRIDE
matrix, measurements, environment) is the ``hil_report`` entry point.
"""

from __future__ import annotations

import pytest

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
]


def pytest_addoption(parser: pytest.Parser) -> None:
    register_options(parser, ALL_OPTIONS + defect_proof.OPTIONS)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[SETTINGS_KEY] = HilSettings.from_config(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from hil.board.virtual import DEFECTS as BOARD_DEFECTS
    from hil.server.defects import CATALOGUE as SERVER_DEFECTS  # imported late: `hil --help` stays cheap

    check_needs(items)
    check_firmware(items)
    defect_proof.check_declared(items, {d.name for d in BOARD_DEFECTS} | {d.name for d in SERVER_DEFECTS})
    defect_proof.select_for_proof(config, items, settings(config).defects)
