"""Board + console + flashing against a real virtual board (`hil sim`) over the fast RFC2217 client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from hil.board import Board, BoardSpec
from hil.console import ExpectTimeout
from hil.flashing import FlashRegion

FREE = 0x300000  # between the secondary slot's end (0x2C0000) and the scratch area (0x3E0000)


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory):
    state = tmp_path_factory.mktemp("sim")
    proc = subprocess.Popen([sys.executable, "-m", "hil.cli", "sim", "--port", "0", "--state-dir", str(state)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("rfc2217://"), f"hil sim printed {url!r}"
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


@pytest.fixture
def board(sim_url, tmp_path):
    with Board(BoardSpec("vdut", sim_url)) as b:
        b.console.log_to(tmp_path / "vdut.log")
        yield b


def test_flash_skips_identical_and_rewrites_after_erase(board):
    region = FlashRegion(FREE, os.urandom(0x8000) + bytes(0x8000), "blob")
    progress = []
    first = board.flash([region], reset=False, progress=lambda label, done, total: progress.append((label, done, total)))
    assert first.written == ["blob"] and first.chip == "esp32" and first.bytes_written == 0x10000
    assert progress and progress[-1][0] == "blob" and progress[-1][1] == progress[-1][2]
    assert board.flash([region], reset=False).skipped == ["blob"]
    assert board.flash([region], reset=False, force=True).written == ["blob"]
    erased = board.erase_region(FREE, 0x10000, reset=False)
    assert erased.regions[0].action == "erased"
    assert board.flash([region], reset=False).written == ["blob"]


def test_declared_reset_timing_enters_the_loader_without_esptool_resets(sim_url, tmp_path):
    """A board whose reset pulse is declared (0 s: the virtual board's EN has no RC) is taken into
    the loader by the harness, which waits for the ROM's "waiting for download" instead of esptool's
    fixed 100 + 50 ms; the flash works, and the chip boots again afterwards."""
    from hil.board.drivers import SerialLinesReset
    from hil.flashing.session import FlashSession

    with Board(BoardSpec("vdut", sim_url, reset_pulse=0.0)) as board:
        board.console.log_to(tmp_path / "vdut.log")
        report = board.flash([FlashRegion(FREE, b"\x5a" * 4096, "blob")])
        assert report.regions[0].action in ("written", "skipped")
        board.console.expect_event("rom.reset", 10, mode="SPI_FAST_FLASH_BOOT")
        with board.console.pause() as port:
            session = FlashSession(port, "vdut", enter_loader=SerialLinesReset(port, reset_pulse=0.0).enter_download)
            session.connect()
    assert session.transcript.count("Connecting...") == 1, session.transcript  # no fallback to esptool's reset
    assert "." not in session.transcript, session.transcript  # and no failed SYNC: it waited for the ROM


def test_loader_entry_that_fails_falls_back_to_esptools_reset(sim_url):
    from hil.flashing.session import FlashSession

    with Board(BoardSpec("vdut", sim_url)) as board:
        board.reset()  # out of any loader a test before left it in
        with board.console.pause() as port:
            session = FlashSession(port, "vdut", enter_loader=lambda: None)  # a reset that does nothing
            session.connect()
    assert session.chip == "esp32"
    assert session.transcript.count("Connecting...") == 2, session.transcript  # own attempt failed, esptool's worked


def test_reset_is_expected_and_console_keeps_working_after_flashing(board):
    board.flash([FlashRegion(FREE, b"\x00" * 4096, "zero")], reset=False)
    mark = board.console.mark()
    board.reset()
    # an announced reset is not a crash: waiting for a later line passes over the ROM banner
    board.console.expect_event("rom.reset", since=mark, timeout=10, mode="SPI_FAST_FLASH_BOOT")
    with pytest.raises(ExpectTimeout, match="vdut: no line matching /never printed/ within 0.3 s"):
        board.console.expect("never printed", timeout=0.3)
