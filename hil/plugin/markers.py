"""The harness's markers, declared as data, and the checks that refuse a marker used wrongly at
collection (a usage error naming the test, never a warning a run scrolls past)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from hil.board.spec import CAPABILITIES
from hil.tiers import MARKER as TIER_MARKER

MARKERS: tuple[str, ...] = (
    "firmware(name): flash this artifact of firmware_builds/index.json instead of app-v1",
    "fails_with(*defects): the virtual-board or reference-server defects this scenario must detect "
    "(`hil sim --list-defects`, `hil server --list-defects`; proven by --hil-defect-proof runs)",
    f"needs(*capabilities): skip unless the board declares these capabilities ({', '.join(sorted(CAPABILITIES))})",
    "ota_packages(*images): FOTA packages the test's update server offers (image names of the firmware "
    "index, default app-v2)",
    TIER_MARKER,
)


def check_needs(items: Iterable[pytest.Item]) -> None:
    """Refuse a ``needs`` naming a capability no board can declare (a typo would skip for ever)."""
    for item in items:
        for mark in item.iter_markers("needs"):
            unknown = sorted(set(mark.args) - CAPABILITIES.keys())
            if unknown or not mark.args:
                raise pytest.UsageError(
                    f"{item.nodeid}: needs({', '.join(map(repr, mark.args))}) names unknown capabilities "
                    f"{unknown}; known: {', '.join(sorted(CAPABILITIES))} (hil.board.spec.CAPABILITIES)"
                )


def check_firmware(items: Iterable[pytest.Item]) -> None:
    """Refuse a ``firmware`` marker that does not name exactly one artifact."""
    for item in items:
        mark = item.get_closest_marker("firmware")
        if mark is not None and (len(mark.args) != 1 or not isinstance(mark.args[0], str)):
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.firmware takes one artifact name of "
                "firmware_builds/index.json, e.g. firmware('app-v2')"
            )
