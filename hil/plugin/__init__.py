"""The hil pytest plugin (entry point ``pytest11``): options, settings, markers.

Options, ini keys use the ``hil`` prefix (``--hil-…``, ``hil_…``); parsed settings live in
``config.stash``. Fixtures are in the top-level ``fixtures/`` package, loaded by conftest.py; the
report (STRIDE matrix, measurements, environment) is the ``hil.report`` plugin registered here.
"""

from __future__ import annotations

import pytest

from hil.plugin import defect_proof
from hil.plugin.options import register_options
from hil.plugin.settings import ALL_OPTIONS, SETTINGS_KEY, HilSettings, settings

MARKERS: tuple[str, ...] = (
    "firmware(name): flash this artifact of firmware_builds/index.json instead of app-v1",
    "fails_with(*defects): the virtual-board defects this scenario must detect (checked by the "
    "defect meta-tests in selftest/)",
    "needs(*capabilities): skip unless the board declares these capabilities (power, sniff, ...)",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    register_options(parser, ALL_OPTIONS + defect_proof.OPTIONS)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[SETTINGS_KEY] = HilSettings.from_config(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from hil.server.defects import CATALOGUE as SERVER_DEFECTS  # imported late: `hil --help` stays cheap
    from hil.sim.defects import CATALOGUE as BOARD_DEFECTS

    defect_proof.check_declared(items, {d.name for d in BOARD_DEFECTS} | {d.name for d in SERVER_DEFECTS})
    defect_proof.select_for_proof(config, items, settings(config).defects)
