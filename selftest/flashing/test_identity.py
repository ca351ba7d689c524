"""Before any write the detected chip is checked against the firmware index's chip and the
inventory's ``chip`` and ``mac``: an ESP32-C6 on the port while the index is built for the ESP32, or
a MAC the boards file does not name, stops the flash with what to do, and nothing is written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hil.board import Board
from hil.board.flash_app import flash_app
from hil.board.virtual import VirtualBoardSource
from hil.flashing import FlashRegion, IdentityMismatch
from hil.flashing.identity import ExpectedIdentity, check_identity
from hil.images.index import load_index

ROOT = Path(__file__).resolve().parents[2]
FREE = 0x300000


@pytest.fixture(scope="module")
def c6(tmp_path_factory):
    """A virtual ESP32-C6, started as such (not through --hil-sim-chip, which may follow the index)."""
    source = VirtualBoardSource("vdut-c6", tmp_path_factory.mktemp("c6"), chip="esp32c6")
    spec, _ = source.start()
    yield spec
    source.stop()


def test_esp32_index_on_an_esp32c6_is_refused_and_nothing_is_written(c6, tmp_path):
    index = load_index(ROOT / "firmware_builds")
    assert index.chip == "esp32"
    spec = replace(c6, chip="auto")  # the inventory does not say: only the index's chip can object
    with Board(spec) as board:
        board.console.log_to(tmp_path / "c6.log")
        with pytest.raises(IdentityMismatch) as info:
            flash_app(board, index, "app-v1")
        message = str(info.value)
        for fragment in (
            "vdut-c6",
            spec.port,
            "detected esp32c6",
            "built for esp32",
            "index.json",
            "--hil-firmware-dir",
            "Nothing was written",
        ):
            assert fragment in message, (fragment, message)
        bootloader = index.get("bootloader")
        region = FlashRegion(bootloader.offset, index.path("bootloader").read_bytes(), "bootloader")
        # skip-if-identical would skip it had the refused flash written it
        assert board.flash([region], reset=False).written == ["bootloader"]


def test_a_mac_the_boards_file_does_not_name_is_refused(c6, tmp_path):
    wrong = replace(c6, mac="AA-BB-CC-DD-EE-FF")
    with Board(wrong) as board:
        board.console.log_to(tmp_path / "c6.log")
        block = FlashRegion(FREE, b"\xa5" * 4096, "blob")
        with pytest.raises(IdentityMismatch, match=r"MAC .*mac = 'AA-BB-CC-DD-EE-FF'.*by-id") as info:
            board.flash([block], reset=False)
        assert c6.mac is not None and c6.mac in str(info.value)
    with Board(c6) as board:  # the right MAC and chip: flashed
        board.console.log_to(tmp_path / "c6.log")
        assert board.flash([block], reset=False).written == ["blob"]


def test_inventory_chip_and_mac_spelling():
    check_identity(
        "b", "p", "esp32", "aa:bb:cc:dd:ee:ff", ExpectedIdentity("esp32", chip="auto", mac="AA-BB-CC-DD-EE-FF")
    )
    with pytest.raises(IdentityMismatch, match=r"the boards file says chip = 'esp32s3': fix the board's entry"):
        check_identity("b", "p", "esp32", "aa:bb:cc:dd:ee:ff", ExpectedIdentity(chip="esp32s3"))
