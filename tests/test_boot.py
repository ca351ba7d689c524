"""Boot scenarios: only correctly signed images boot, and the board runs what was flashed.

Each scenario names the virtual-board defects it must detect (``fails_with``); the defect
meta-tests in selftest/ run it against a board with each of them and require a failure.
"""

from __future__ import annotations

import pytest

from hil.board.board import Board
from hil.board.flash_app import flash_app, flash_plan
from hil.images.index import Index
from hil.images.variants import VARIANTS


# The MCUboot defects that let each non-booting variant through: the scenario for a variant must
# fail against each of them. A variant missing here is a collection error, not a silent gap.
LETS_THROUGH: dict[str, tuple[str, ...]] = {
    "unsigned": ("mcuboot-accept-unsigned", "mcuboot-skip-hash"),
    "other-key": ("mcuboot-trust-embedded-key", "mcuboot-accept-unsigned", "mcuboot-skip-hash"),
    "bitflip": ("mcuboot-skip-hash",),
    "truncated": ("mcuboot-ignore-size",),
    "bad-magic": ("mcuboot-ignore-magic",),
}


def _refused_variants() -> list:
    # The builder's own table (collection happens before the index is built on a fresh clone);
    # the test checks the index agrees.
    return [pytest.param(v.name, marks=pytest.mark.fails_with(*LETS_THROUGH[v.name]), id=v.name)
            for v in VARIANTS if not v.boots]


@pytest.mark.stride("T", "E", threat="a tampered or unsigned image is executed")
def test_v1_boots_after_mcuboot_validation(flashed_board: Board, firmware: Index) -> None:
    """v1 is validated by MCUboot (hash + RSA-2048 PSS signature by the trusted key) and runs.

    MCUboot prints nothing when a signature verifies: ``boot.verified`` is inferred from it loading
    the primary slot (it validates before every load) with no refusal in this boot. A bootloader
    that skips the check boots a good image the same way, so that defect is proven by the refused
    variants below (``LETS_THROUGH``), not here."""
    console, boot = flashed_board.console, flashed_board.timing.boot()
    console.expect_event("boot.mcuboot", boot)
    console.expect_event("boot.verified", boot, index="0", slot="0", unless=["boot.no_image"])
    console.expect_event("boot.version", boot, version=firmware.get("app-v1").version)


@pytest.mark.stride("T", threat="the device runs something other than the image flashed")
@pytest.mark.firmware("app-v2")
@pytest.mark.fails_with("app-version-hardcoded")
def test_v2_boots_and_reports_its_version(flashed_board: Board, firmware: Index) -> None:
    """v2 shows version 2.0.0: the visible version change of a v1 → v2 update."""
    console, boot = flashed_board.console, flashed_board.timing.boot()
    console.expect_event("boot.verified", boot, unless=["boot.no_image"])
    console.expect_event("boot.version", boot, version=firmware.get("app-v2").version)


@pytest.mark.stride("T", "E", threat="a bootloader accepts an image it should refuse")
@pytest.mark.parametrize("variant", _refused_variants())
def test_invalid_image_is_refused(board: Board, firmware: Index, variant: str) -> None:
    """Each non-booting variant is refused by MCUboot and no application starts."""
    assert firmware.get(variant).boots is False, f"index.json says {variant} boots"
    console, boot = board.console, board.timing.boot()
    flash_app(board, firmware, variant)
    start = console.cursor
    console.expect_event("boot.refused", boot, slot="primary", unless=["boot.validated"])
    console.expect_event("boot.no_image", boot)
    app_lines = [line.text for line in console.lines(since=start)
                 if console.profile.event("app.started").search(line.text)
                 or console.profile.event("boot.version").search(line.text)]
    # MCUboot halts after "Unable to find bootable image": an app could only have started before.
    assert not app_lines, f"{variant}: an application started: {app_lines}"


@pytest.mark.stride("T", threat="an erased or corrupted bootloader lets unverified code run")
@pytest.mark.fails_with("rom-boots-without-bootloader")
def test_erased_bootloader_boots_nothing(flashed_board: Board, firmware: Index) -> None:
    """With the bootloader region erased the ROM finds no valid header and nothing boots."""
    flashed_board.console.expect_event("boot.version", flashed_board.timing.boot())  # it did boot before
    bootloader = firmware.get("bootloader")
    flashed_board.erase_region(bootloader.offset, 0x1000)
    console, boot = flashed_board.console, flashed_board.timing.boot()
    start = console.cursor
    console.expect_event("rom.invalid_header", boot, value="0xffffffff",
                         unless=["boot.mcuboot", "app.started"])
    # The ROM keeps retrying: a second "invalid header" proves it looped without loading anything.
    console.expect_event("rom.invalid_header", boot, value="0xffffffff")
    booted = [line.text for line in console.lines(since=start)
              if console.profile.event("boot.mcuboot").search(line.text)
              or console.profile.event("app.started").search(line.text)]
    assert not booted, f"something booted without a bootloader: {booted}"


@pytest.mark.fails_with("loader-stale-md5")
def test_flashing_the_same_image_again_writes_nothing(flashed_board: Board, firmware: Index) -> None:
    """Skip-if-identical: a second flash of the same images performs no flash write."""
    plan = flash_plan(firmware, "app-v1")
    again = flashed_board.flash(plan)
    assert again.bytes_written == 0, again.format()
    assert sorted(again.skipped) == sorted(region.label for region in plan), again.format()


@pytest.mark.stride("T", threat="a downgraded image is booted from serial")
@pytest.mark.firmware("downgrade")
def test_older_signed_image_boots_over_serial(flashed_board: Board, firmware: Index) -> None:
    """A correctly signed older image boots when flashed over serial: refusing downgrades is the
    OTA path's job (see the OTA scenarios), not the bootloader's."""
    flashed_board.console.expect_event("boot.version", flashed_board.timing.boot(),
                                       version=firmware.get("downgrade").version)
