"""The board runs the image we flashed: v1 by default, v2 when a scenario asks for it."""

from __future__ import annotations

import pytest

from hil.board.board import Board
from hil.board.contract import BOOT_TIMEOUT
from hil.images.index import Index


@pytest.mark.stride("T", threat="the device runs something other than the image flashed")
def test_v1_reports_its_version(flashed_board: Board, firmware: Index) -> None:
    """`flashed_board` holds bootloader + NVS + app-v1 (the default); its boot log names 1.0.0."""
    flashed_board.console.expect_event("boot.version", BOOT_TIMEOUT, version=firmware.get("app-v1").version)


@pytest.mark.stride("T", "E", threat="a tampered image is executed")
@pytest.mark.firmware("app-v2")
def test_v2_is_verified_and_reports_its_version(flashed_board: Board, firmware: Index, evidence) -> None:
    """app-v2 passes the bootloader's signature check, then reports 2.0.0."""
    console = flashed_board.console
    # "boot.validated" before "boot.verified" would mean the image was loaded without being checked.
    console.expect_event("boot.verified", BOOT_TIMEOUT, unless=["boot.validated"])
    console.expect_event("boot.version", BOOT_TIMEOUT, version=firmware.get("app-v2").version)
    evidence.measure("boot lines", len(console.lines()), "lines")
