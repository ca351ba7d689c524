"""Opening an RFC2217 port resets nothing: the harness's client sends no DTR/RTS on open, so a board
behind esptool's RFC2217 server (DTR on = bootloader reset, RTS off = hard reset) keeps running its
app. The virtual board's server has that personality (``resets="esptool"``, ``hil sim``'s default)."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
import serial

from hil.board import open_port
from hil.sim import slip
from hil.sim.board import VirtualBoard
from hil.sim.loader import protocol as p
from hil.sim.rfc2217_server import Rfc2217Server
from hil.sim.runtime import Runtime


class EchoFirmware:
    """Counts its boots and echoes every console line, so a test can tell the app still runs."""

    def __init__(self) -> None:
        self.boots = 0
        self._cond = threading.Condition()

    def wait_boots(self, count: int, timeout: float = 10.0) -> bool:
        """Block until the app booted ``count`` times in total; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.boots >= count, timeout)

    def __call__(self, rt: Runtime) -> None:
        with self._cond:
            self.boots += 1
            self._cond.notify_all()
        while True:
            line = rt.read_line(timeout=10)
            if line is not None:
                rt.write_line(f"echo {line}")


@pytest.fixture
def served(tmp_path):
    firmware = EchoFirmware()
    board = VirtualBoard("esp32", tmp_path / "state", firmware=firmware, strap_window=0.2)
    board.open()
    assert firmware.wait_boots(1), "the virtual board's app did not start"
    server = Rfc2217Server(board, resets="esptool").start()
    yield board, firmware, server
    server.close()
    board.close()


def _read_until(port, needle: bytes, timeout: float = 5.0) -> bytes:
    data = bytearray()
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        data += port.read(max(1, port.in_waiting))
    return bytes(data)


def _rom_loader_answers(port, timeout: float = 5.0) -> bool:
    """SYNC as esptool does (repeated until answered: the ROM listens only after its banner)."""
    sync = slip.encode(struct.pack("<BBHI", 0, p.SYNC, len(p.SYNC_PAYLOAD), 0) + p.SYNC_PAYLOAD)
    reply = b"\xc0\x01" + bytes([p.SYNC])
    data = bytearray()
    deadline = time.monotonic() + timeout
    while reply not in data and time.monotonic() < deadline:
        port.write(sync)
        data += port.read(max(1, port.in_waiting))
    return reply in data


def test_harness_open_leaves_the_app_running(served):
    board, firmware, server = served
    port = open_port(server.url, timeout=0.1)
    try:
        port.write(b"ping\n")
        seen = _read_until(port, b"echo ping")
        assert b"echo ping" in seen, f"the app did not answer after the harness opened the port: {seen!r}"
        assert firmware.boots == 1  # not reset into the loader, nor restarted (RTS off would)
        assert board.mode == "app"
    finally:
        port.close()


def test_esptool_personality_resets_on_dtr_as_esp_rfc2217_server(served):
    """pyserial's client asserts DTR on open: esptool's server (and the virtual board's) reset into
    the ROM loader, which is what the harness's client avoids."""
    _, firmware, server = served
    plain = serial.serial_for_url(server.url, timeout=0.1)
    try:
        assert _rom_loader_answers(plain), "opening with DTR asserted did not reset into the ROM loader"
        plain.rts = False  # in a bootloader reset: ignored, as by esp_rfc2217_server
        plain.dtr = False  # ends it; now RTS off is a hard reset into the app
        plain.rts = True
        plain.rts = False
        assert b"boot:0x13" in _read_until(plain, b"boot:0x13"), "no hard reset on RTS off"
        assert firmware.wait_boots(2), "the app did not boot again after the hard reset"
    finally:
        plain.close()


@pytest.fixture
def esptool_server(monkeypatch):
    """esptool's own esp_rfc2217_server (its Redirector and EspPortManager) in front of a loopback
    UART; the resets it decides on are recorded instead of run (loop:// has no lines to pulse)."""
    from hil.flashing.esptool_host import esptool_module

    esptool_module()  # esptool's configuration is loaded under the harness's rules first
    from esp_rfc2217_server.esp_port_manager import EspPortManager
    from esp_rfc2217_server.redirector import Redirector

    resets: list[str] = []
    monkeypatch.setattr(EspPortManager, "_reset_thread", lambda self: resets.append("bootloader reset"))
    monkeypatch.setattr(EspPortManager, "_hard_reset_thread", lambda self: resets.append("hard reset"))
    listener = socket.create_server(("127.0.0.1", 0))
    uart = serial.serial_for_url("loop://", timeout=0.1)

    def serve() -> None:
        for _ in range(2):  # one client after the other, as the real server does
            sock, _ = listener.accept()
            redirector = Redirector(uart, sock)
            redirector.shortcircuit()
            sock.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"rfc2217://127.0.0.1:{listener.getsockname()[1]}", resets
    thread.join(10)  # both clients served: the redirector's threads are done with the UART
    listener.close()
    uart.close()


def test_esptools_rfc2217_server_resets_on_pyserials_open_but_not_on_the_harness(esptool_server):
    url, resets = esptool_server
    port = open_port(url, timeout=0.1)
    port.baudrate = 57600  # acknowledged: the server has processed everything the open sent
    port.close()
    assert resets == []
    plain = serial.serial_for_url(url + "?ign_set_control", timeout=0.1)  # as the server tells its users
    plain.baudrate = 57600
    plain.close()
    assert resets == ["bootloader reset"]
