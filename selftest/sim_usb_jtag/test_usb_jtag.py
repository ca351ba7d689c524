"""The virtual board's USB-Serial/JTAG personality: resets that reset the USB controller take the
port away (client dropped, connections refused, output lost) until it re-enumerates; resets the
controller makes itself keep the link; esptool's USB-JTAG sequence enters the ROM loader."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import serial

from hil.board.transport import open_port
from hil.sim.board import VirtualBoard
from hil.sim.rfc2217_server import Rfc2217Server
from hil.sim.runtime import Runtime

GAP = 0.3


def ticking_app(rt: Runtime) -> None:
    """Prints a line every 50 ms (device time) so there is always output to lose or to receive."""
    tick = 0
    while True:
        rt.write_line(f"app tick {tick}")
        tick += 1
        rt.wait(0.05)


@pytest.fixture
def usb_board():
    board = VirtualBoard("esp32c6", None, firmware=ticking_app, name="usbdut").open()
    server = Rfc2217Server(board, usb_jtag_gap=GAP).start()
    yield board, server
    server.close()
    board.close()


def _read_until(port, needle: bytes, timeout: float = 5.0) -> bytes:
    data = bytearray()
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        data += port.read(max(1, port.in_waiting))
    assert needle in data, f"{needle!r} not received; got {bytes(data[-200:])!r}"
    return bytes(data)


def _wait_present(server: Rfc2217Server, timeout: float = 5.0) -> float:
    """Seconds until the USB device is back on the bus."""
    start = time.monotonic()
    assert server.usb is not None and server.usb.wait_present(timeout), "USB device never re-enumerated"
    return time.monotonic() - start


def test_power_cycle_drops_the_client_refuses_connections_and_loses_output(usb_board):
    board, server = usb_board
    client = open_port(server.url)
    _read_until(client, b"app tick")
    lost_before = board.uart.dropped_tx
    board.power_off()
    # the client's port is gone: its reads fail (pyserial: the connection's reader thread died)
    with pytest.raises(serial.SerialException):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            client.read(max(1, client.in_waiting))
    client.close()
    with pytest.raises(serial.SerialException, match="cannot open serial port"):
        open_port(server.url)  # off the bus: nobody can open it
    board.power_on()
    back_after = _wait_present(server)
    assert back_after >= GAP * 0.9  # the enumeration gap counts from the chip running again
    assert board.uart.dropped_tx > lost_before  # the boot output nobody could receive is lost
    again = open_port(server.url)
    try:
        assert b"app tick" in _read_until(again, b"app tick")
    finally:
        again.close()
    assert server.usb.enumerations == 1


def test_host_requested_resets_keep_the_link_and_esptool_hard_reset_boots_the_app(usb_board):
    from esp_pylib.serial_reset import hard_reset, usb_jtag_bootloader_reset

    board, server = usb_board
    client = open_port(server.url)
    try:
        usb_jtag_bootloader_reset(client)  # esptool's USB-Serial/JTAG sequence
        # the ROM's own banner proves the download boot (board.mode read at this instant was once seen
        # as "reset" under a loaded CI run: noted in issue 12, not understood yet)
        _read_until(client, b"waiting for download")
        hard_reset(client, hold_delay=0.2, post_release_delay=0.2)  # esptool's HardReset(uses_usb=True)
        _read_until(client, b"app tick")
        assert server.usb.present and server.connections == 1 and server.usb.enumerations == 0
    finally:
        client.close()


def test_real_esptool_connects_with_its_usb_reset_through_the_usb_jtag_port(usb_board, tmp_path):
    _, server = usb_board
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPTOOL_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "esptool",
            "--port",
            server.url,
            "--before",
            "usb-reset",
            "--after",
            "hard-reset",
            "read-mac",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MAC:" in result.stdout and "Hard resetting" in result.stdout
    assert server.usb.enumerations == 0  # esptool's own resets never took the port away


def test_cli_refuses_a_negative_gap_or_a_gap_without_usb_jtag():
    for args in (["--usb-jtag", "--usb-jtag-gap", "-1"], ["--usb-jtag-gap", "0.5"]):
        result = subprocess.run(
            [sys.executable, "-m", "hil.sim", *args, "--port", "0"], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 2 and "--usb-jtag-gap" in result.stderr and "Traceback" not in result.stderr
