"""``reset = "none"`` (a board without the auto-reset circuit): the harness never toggles DTR/RTS.
Flashing works when the chip already waits in the ROM loader, fails with what to do when it does
not, and every reset is refused naming board and port."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from hil.board import Board, BoardError, open_port
from hil.board.drivers import SerialLinesReset
from hil.board.virtual import VirtualBoardSource
from hil.console.profile import ROM_RESET_REGEX
from hil.flashing import FlashConnectError, FlashRegion
from hil.sim.power import PowerSwitch

FREE = 0x300000


@pytest.fixture(scope="module")
def virtual(tmp_path_factory):
    source = VirtualBoardSource("vdut", tmp_path_factory.mktemp("board"), chip="esp32")
    spec, power = source.start()
    yield replace(spec, reset="none", reset_pulse=None), power
    source.stop()


def _status(power) -> dict:
    assert isinstance(power, PowerSwitch)
    return power.status()


def test_reset_is_refused_and_a_running_chip_cannot_be_flashed(virtual, tmp_path):
    spec, power = virtual
    with Board(spec) as board:
        board.console.log_to(tmp_path / "vdut.log")
        with pytest.raises(BoardError, match=rf"board vdut \({spec.port}\) has reset = 'none'.*Press EN/RST"):
            board.reset()
        with pytest.raises(FlashConnectError, match="reset = 'none': put it in download mode"):
            board.flash([FlashRegion(FREE, b"\x11" * 4096, "blob")], reset=False)
        # The chip kept running: no reset banner since the port opened, and it is not in the loader.
        # (Not the line levels: esp_rfc2217_server asserts both on each connection and the server
        # releases them when it notices the client gone, which can come after this test reads them.)
        status = _status(power)
        assert status["mode"] == "app", status
    assert not re.search(ROM_RESET_REGEX, (tmp_path / "vdut.log").read_text(errors="replace"))


def test_a_chip_already_in_the_loader_is_flashed_without_touching_the_lines(virtual, tmp_path):
    spec, power = virtual
    port = open_port(spec.port)  # someone held BOOT and pressed EN: here, the lines of another client
    try:
        SerialLinesReset(port, reset_pulse=0.0).enter_download()
    finally:
        port.close()
    with Board(spec) as board:
        board.console.log_to(tmp_path / "vdut.log")
        report = board.flash([FlashRegion(FREE, b"\x22" * 4096, "blob")], reset=False)
        assert report.written == ["blob"] and not report.restarted
        assert _status(power)["mode"] == "stub"  # left in the loader: nothing reset it
        with pytest.raises(BoardError, match=r"4096 B written, but it has reset = 'none'.*press EN/RST"):
            board.flash([FlashRegion(FREE, b"\x33" * 4096, "blob")])
