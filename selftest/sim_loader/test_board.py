"""VirtualBoard: reset lines, banners, boot of flash code, panics, persistence, lost output, power."""

from __future__ import annotations

import threading
import time

import pytest

from hil.sim.board import VirtualBoard
from hil.sim.power import ControlServer, PowerSwitch, PowerSwitchError
from hil.sim.reset_lines import ResetLines

from .board_harness import FakeFirmware, classic_reset, hard_reset, make_board


def test_reset_line_truth_table():
    assert ResetLines.en_for(dtr=False, rts=True) is False
    assert ResetLines.en_for(dtr=True, rts=True) is True
    assert ResetLines.io0_low_for(dtr=True, rts=False) is True
    assert ResetLines.io0_low_for(dtr=True, rts=True) is False


def test_io0_window_after_en_rise():
    lines = ResetLines(lambda: None, lambda: None)
    lines.set(dtr=False, rts=True)
    lines.set(dtr=True, rts=True)          # EN rises with IO0 high ...
    lines.set(rts=False)                    # ... IO0 goes low just after
    assert lines.sample_boot_mode(0.2, lambda: False) is True
    lines.set(dtr=False, rts=True)
    lines.set(rts=False)                    # EN rises, IO0 stays high
    assert lines.sample_boot_mode(0.05, lambda: False) is False


def test_hard_reset_settles_the_strapping_without_waiting_out_the_window():
    lines = ResetLines(lambda: None, lambda: None)
    lines.set(dtr=False, rts=True)
    lines.set(rts=False)                    # EN rises with DTR off: IO0 cannot go low any more
    started = time.monotonic()
    assert lines.sample_boot_mode(30.0, lambda: False) is False
    assert time.monotonic() - started < 5.0  # decided at once, not after the 30 s window
    lines.set(dtr=False, rts=True)
    lines.set(dtr=True, rts=True)           # EN rises with DTR on (esptool's classic sequence) ...
    waiter = threading.Thread(target=lambda: lines.set(rts=False))
    waiter.start()                          # ... and IO0 goes low from another thread
    assert lines.sample_boot_mode(30.0, lambda: False) is True
    waiter.join()


def test_power_on_boots_from_flash_with_poweron_banner(tmp_path):
    board, host, fw = make_board(tmp_path)
    with board:
        text = host.wait_for("fake: boot 1")
    assert text.startswith("ets Jul 29 2019 12:21:46\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n")
    assert "waiting for download" not in text


def test_classic_reset_enters_download_mode(tmp_path):
    board, host, _ = make_board(tmp_path)
    with board:
        host.wait_for("fake: boot 1")
        classic_reset(board)
        text = host.wait_for("waiting for download")
        assert "boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))" in text
        assert board.mode == "download"
        hard_reset(board)
        host.wait_for("fake: boot 2")
        assert board.mode == "app"


def test_c6_download_banner(tmp_path):
    board, host, _ = make_board(tmp_path, chip="esp32c6")
    with board:
        classic_reset(board)
        text = host.wait_for("waiting for download")
    assert "ESP-ROM:esp32c6-20220919" in text and "DOWNLOAD_BOOT" in text


def test_software_reboot_and_panic_reboot(tmp_path):
    board, host, fw = make_board(tmp_path)
    with board:
        host.wait_for("fake: boot 1")
        board.host_write(b"reboot\n")
        host.wait_for("fake: boot 2 cause=SW_CPU_RESET")
        assert "rst:0xc (SW_CPU_RESET),boot:0x13" in host.text
        board.host_write(b"crash\r\n")
        text = host.wait_for("fake: boot 3")
    assert "Guru Meditation Error: Core  0 panic'ed (ZeroDivisionError)" in text
    assert "Rebooting..." in text


def test_a_task_notification_wakes_the_console_read_at_once(tmp_path):
    board, host, fw = make_board(tmp_path)
    with board:
        host.wait_for("fake: boot 1")
        assert fw.rt is not None
        threading.Thread(target=fw.rt.notify).start()  # another task, as the OTA timer's request_restart
        host.wait_for("no line", timeout=5)  # the read's own timeout is 10 s
        board.host_write(b"ping\n")
        host.wait_for("echo ping")  # the notification is used up: the next read waits for a line again
        assert host.text.count("no line") == 1


def test_output_is_lost_without_a_host_and_input_reaches_the_console(tmp_path):
    board, host, fw = make_board(tmp_path)
    board.uart.detach()
    with board:
        assert fw.booted.wait(5)
        board.uart.attach(host)
        board.host_write(b"second\n")
        host.wait_for("echo second")
    assert "fake: boot 1" not in host.text     # printed while nobody listened
    assert board.uart.dropped_tx > 0


def test_restart_is_the_same_board(tmp_path):
    board, host, fw = make_board(tmp_path)
    with board:
        host.wait_for("fake: boot 1")
        board.host_write(b"flash\n")
        host.wait_for("echo flash")
        mac = board.mac
    again = VirtualBoard("esp32", tmp_path / "state", firmware=FakeFirmware())
    with again:
        assert again.mac == mac
        assert again.flash.read(0x9000, 3) == b"nvs"


def test_en_held_low_keeps_the_chip_stopped(tmp_path):
    board, host, fw = make_board(tmp_path)
    with board:
        host.wait_for("fake: boot 1")
        board.set_lines(dtr=False, rts=True)
        assert board.mode == "reset"
        board.host_write(b"ignored\n")          # nobody is running to receive it
        board.set_lines(rts=False)
        host.wait_for("fake: boot 2")
        assert "echo ignored" not in host.text


@pytest.fixture
def controlled(tmp_path):
    board, host, fw = make_board(tmp_path)
    board.open()
    server = ControlServer(board, tmp_path / "state" / "control.sock").start()
    yield board, host, PowerSwitch(server.path, timeout=5)
    server.close()
    board.close()


def test_power_switch_off_on_and_status(controlled):
    board, host, switch = controlled
    host.wait_for("fake: boot 1")
    status = switch.off()
    assert status["power"] is False and status["mode"] == "off"
    board.host_write(b"lost\n")
    status = switch.on()
    host.wait_for("fake: boot 2")
    assert status["power"] is True and status["chip"] == "esp32" and status["mac"].startswith("24:0a:c4")
    assert "echo lost" not in host.text


def test_cut_when_checkpoint_with_restore(controlled):
    board, host, switch = controlled
    host.wait_for("fake: boot 1")
    switch.cut_when("ota.chunk_written", {"n": 2}, restore=True)
    assert switch.status()["armed"][0]["event"] == "ota.chunk_written"
    board.host_write(b"cut\n")
    assert switch.wait_cut(1, timeout=5)
    text = host.wait_for("fake: boot 2")
    assert "chunk 1 written" in text and "chunk 2 written" not in text
    assert switch.status()["cuts"] == [{"event": "ota.chunk_written", "fields": {"n": 2}}]


def test_cut_without_restore_stays_off(controlled):
    board, host, switch = controlled
    host.wait_for("fake: boot 1")
    switch.cut_when("ota.chunk_written", {"n": 1})
    board.host_write(b"cut\n")
    assert switch.wait_cut(1, timeout=5)
    assert switch.status()["power"] is False
    switch.on()
    host.wait_for("fake: boot 2")


def test_control_socket_rejects_bad_requests(controlled):
    _, _, switch = controlled
    with pytest.raises(PowerSwitchError, match="unknown op"):
        switch.request("explode")
    with pytest.raises(PowerSwitchError, match="cut_when"):
        switch.request("cut_when", event=3)


def _flash_end(stay: int) -> bytes:
    import struct

    from hil.sim import slip
    from .loader_harness import request
    return slip.encode(request(0x04, struct.pack("<I", stay)))


def test_loader_reboot_keeps_download_strap_and_run_boots_flash(tmp_path):
    board, host, fw = make_board(tmp_path)
    with board:
        classic_reset(board)
        host.wait_for("waiting for download")
        board.host_write(_flash_end(0))          # ROM: reboot
        text = host.wait_for("waiting for download", count=2)
        assert "rst:0xc (SW_CPU_RESET),boot:0x3 (DOWNLOAD_BOOT" in text
        next_boot = fw.boots + 1                 # the power-on boot may have run before the reset
        board.host_write(_flash_end(1))          # ROM: run user code
        host.wait_for(f"fake: boot {next_boot}")
        assert board.mode == "app"
