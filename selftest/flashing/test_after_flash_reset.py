"""After flashing, the chip is restarted while esptool is still connected, with esptool's hard reset
of the detected chip class (an ESP32-S3 on USB-OTG needs its RTC watchdog: an RTS pulse leaves it in
the ROM loader); the board's own EN pulse stands in only where that reset is esptool's generic RTS
pulse and the board declares its timing. The console sees the reset as announced."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from hil.board import Board
from hil.board.virtual import VirtualBoardSource
from hil.console.lines import LineKind
from hil.flashing import FlashRegion
from hil.flashing.esptool_host import esptool_module
from hil.flashing.session import FlashSession, chip_specific_hard_reset

FREE = 0x300000  # between the secondary slot's end and the scratch area


def test_chip_classes_with_their_own_hard_reset():
    targets = esptool_module().targets
    assert chip_specific_hard_reset(object.__new__(targets.ESP32S3ROM.STUB_CLASS))  # USB-OTG: watchdog
    assert chip_specific_hard_reset(object.__new__(targets.ESP32S2ROM.STUB_CLASS))
    assert not chip_specific_hard_reset(object.__new__(targets.ESP32ROM.STUB_CLASS))  # the RTS pulse
    assert not chip_specific_hard_reset(object.__new__(targets.ESP32C6ROM.STUB_CLASS))


def _session_with(esp_class: type) -> tuple[FlashSession, list[str]]:
    calls: list[str] = []

    class Chip(esp_class):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:  # no port, no I/O
            pass

    if esp_class is not esptool_module().loader.ESPLoader and chip_specific_hard_reset(object.__new__(esp_class)):
        Chip.hard_reset = lambda self: calls.append("esptool")  # type: ignore[method-assign]
    port = SimpleNamespace(port="fake://dut", close=lambda: None)  # esptool's reset is faked: no I/O
    session = FlashSession(port, board="dut")  # type: ignore[arg-type]
    session._esp = Chip()
    return session, calls


def test_an_s3_gets_esptools_reset_even_with_a_declared_pulse():
    session, calls = _session_with(esptool_module().targets.ESP32S3ROM.STUB_CLASS)
    pulses: list[str] = []
    how = session.hard_reset(board_pulse=lambda: pulses.append("pulse"))
    assert calls == ["esptool"] and pulses == [] and "hard_reset" in how


def test_a_generic_chip_takes_the_boards_declared_pulse():
    session, _ = _session_with(esptool_module().targets.ESP32ROM.STUB_CLASS)
    pulses: list[str] = []
    assert session.hard_reset(board_pulse=lambda: pulses.append("pulse")) == "the board's EN pulse"
    assert pulses == ["pulse"]


@pytest.fixture(scope="module")
def virtual(tmp_path_factory):
    source = VirtualBoardSource("vdut", tmp_path_factory.mktemp("board"), chip="esp32")
    spec, _ = source.start()
    yield spec
    source.stop()


@pytest.mark.parametrize("declared", [False, True], ids=["esptool-timing", "declared-pulse"])
def test_flash_ends_in_an_announced_reset_into_the_app(virtual, tmp_path, declared):
    spec = virtual if declared else replace(virtual, reset_pulse=None)
    with Board(spec) as board:
        board.console.log_to(tmp_path / "vdut.log")
        report = board.flash([FlashRegion(FREE, bytes([declared]) * 4096, "blob")])
        expected = "the board's EN pulse" if declared else "esptool's ESP32StubLoader.hard_reset"
        assert report.restarted == expected
        board.console.expect_event("rom.reset", 10, mode="SPI_FAST_FLASH_BOOT")  # raises if unannounced
        banners = [line.kind for line in board.console.lines() if line.text.startswith("rst:")]
        assert banners[-1] is LineKind.EXPECTED_RESET, banners
