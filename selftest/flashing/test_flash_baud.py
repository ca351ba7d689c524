"""Per-board flash baud: BoardSpec.flash_baud (921600 unless the boards file says otherwise),
``--hil-flash-baud`` over it, 0 = stay at the ROM's rate; the virtual board really changes baud."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hil.board import Board, BoardSpec
from hil.board.virtual import VirtualBoardSource
from hil.flashing import FlashRegion
from hil.flashing.session import FlashSession

FREE = 0x300000


def test_board_flash_baud_and_its_override():
    spec = BoardSpec("a", "/dev/x")
    assert Board(spec).flash_baud == 921600
    assert Board(spec, flash_baud=460800).flash_baud == 460800  # --hil-flash-baud
    assert Board(spec, flash_baud=0).flash_baud == 0  # stay at 115200
    assert Board(replace(spec, flash_baud=230400)).flash_baud == 230400  # the boards file's


@pytest.fixture(scope="module")
def virtual(tmp_path_factory):
    source = VirtualBoardSource("vdut", tmp_path_factory.mktemp("board"), chip="esp32")
    spec, _ = source.start()
    yield spec
    source.stop()


def test_the_virtual_board_changes_baud_and_flashes_at_it(virtual, tmp_path):
    with Board(replace(virtual, flash_baud=921600)) as board:
        board.console.log_to(tmp_path / "vdut.log")
        report = board.flash([FlashRegion(FREE, b"\x44" * 8192, "blob")], force=True)
        assert report.written == ["blob"] and report.restarted
        with board.console.pause() as port:
            session = FlashSession(port, "vdut", flash_baud=921600, esptool_reset="default-reset")
            session.connect()
            assert session.baud == 921600 and port.baudrate == 921600
            assert session.flash_md5(FREE, 8192) == FlashRegion(FREE, b"\x44" * 8192).md5  # answers at 921600
            session.hard_reset()
            port.baudrate = board.spec.baud
    assert any("Changing baud rate to 921600" in line for line in session.transcript), session.transcript
