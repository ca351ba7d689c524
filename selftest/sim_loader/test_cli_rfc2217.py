"""`hil sim` command line, and the RFC2217 server with pyserial's plain client (escaping, lines)."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time

import pytest
import serial

from hil.sim import slip
from hil.sim.loader import protocol as p
from hil.sim.power import PowerSwitch
from hil.sim.rfc2217_server import Rfc2217Server

from .board_harness import make_board
from .loader_harness import parse, request
from .simproc import SimProcess, scrubbed_env


def _hil_sim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hil.sim", *args], capture_output=True, text=True,
                          timeout=30, env=scrubbed_env())


def test_list_defects_prints_the_catalogue():
    result = _hil_sim("--list-defects")
    assert result.returncode == 0 and "loader-stale-md5" in result.stdout


def test_unknown_defect_is_a_clear_error():
    result = _hil_sim("--defect", "no-such-defect", "--port", "0")
    assert result.returncode == 2
    assert "unknown defect(s) no-such-defect" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_url_first_line_board_json_and_clean_exit(tmp_path, sig):
    sim = SimProcess(tmp_path / "b", "esp32c6", "--mac", "60:55:f9:00:00:42").start()
    info = json.loads((tmp_path / "b" / "board.json").read_text())
    assert info["url"] == sim.url and info["mac"] == "60:55:f9:00:00:42" and info["chip"] == "esp32c6"
    assert PowerSwitch(info["control_socket"]).status()["url"] == sim.url
    sim.proc.send_signal(sig)
    assert sim.proc.wait(timeout=10) == 0
    assert "Traceback" not in sim.stop()
    assert not (tmp_path / "b" / "board.json").exists()


@pytest.fixture
def served(tmp_path):
    board, host, _ = make_board(tmp_path)
    board.uart.detach()
    board.open()
    server = Rfc2217Server(board).start()
    client = serial.serial_for_url(server.url, timeout=2)
    yield board, client
    client.close()
    server.close()
    board.close()


def _read_until(client: serial.Serial, needle: bytes, timeout: float = 5) -> bytes:
    data = bytearray()
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        data += client.read(max(1, client.in_waiting))
    assert needle in data, f"{needle!r} not received; got {bytes(data)!r}"
    return bytes(data)


def test_plain_client_reset_into_download_and_escape_heavy_registers(served):
    board, client = served
    client.dtr, client.rts = False, True        # EN low
    client.dtr, client.rts = True, False        # EN high, IO0 low
    _read_until(client, b"waiting for download")
    client.dtr = False
    value = 0xFFC0DBFF                           # SLIP and Telnet specials both ways
    addr = 0x3FFE00FF
    client.write(slip.encode(request(p.WRITE_REG, struct.pack("<IIII", addr, value, 0xFFFFFFFF, 0))))
    client.write(slip.encode(request(p.READ_REG, struct.pack("<I", addr))))
    data = _read_until(client, slip.encode(parse_reply_marker(value))[:-1])
    frames = slip.SlipDecoder().feed(data[data.index(b"\xc0"):])
    assert parse(frames[-1])[1] == value


def parse_reply_marker(value: int) -> bytes:
    """The start of the READ_REG reply carrying ``value``."""
    return struct.pack("<BBHI", 1, p.READ_REG, 4, value)


def test_disconnect_releases_lines_and_drops_output(served):
    board, client = served
    client.dtr, client.rts = False, True
    assert board.mode == "reset"
    client.close()
    deadline = time.monotonic() + 5
    while board.uart.attached and time.monotonic() < deadline:
        board.lines.wake()
    assert not board.uart.attached
    assert (board.lines.dtr, board.lines.rts) == (False, False)
