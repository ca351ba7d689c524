"""Transports: URL dispatch, and the fast RFC2217 client against pyserial's own RFC2217 server
(PortManager) in front of a loopback UART."""

from __future__ import annotations

import socket
import threading

import pytest
import serial
import serial.rfc2217
from serial.urlhandler.protocol_loop import Serial as LoopSerial

from hil.board import FastRFC2217Serial, open_port
from hil.board.drivers import SerialLinesReset


class RecordingLoop(LoopSerial):
    """Loopback UART that records DTR/RTS changes as the server applies them."""

    def __init__(self, *args, **kwargs):
        self.lines: list[tuple[str, bool]] = []
        self.changed = threading.Condition()
        super().__init__(*args, **kwargs)

    def _record(self, name, value):
        with self.changed:
            self.lines.append((name, value))
            self.changed.notify_all()

    def _update_rts_state(self):
        self._record("rts", self._rts_state)

    def _update_dtr_state(self):
        self._record("dtr", self._dtr_state)


class _Writer:
    """PortManager writes to its connection with .write()."""

    def __init__(self, conn):
        self.conn = conn
        self.lock = threading.Lock()

    def write(self, data):
        with self.lock:
            self.conn.sendall(data)


class Rfc2217Server:
    """One-connection RFC2217 server: pyserial's PortManager between a socket and a loop UART."""

    def __init__(self):
        self.uart = RecordingLoop("loop://", timeout=0.05)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"rfc2217://127.0.0.1:{self.listener.getsockname()[1]}"
        self.subnegotiations: list[bytes] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()

    def _serve(self):
        conn, _ = self.listener.accept()
        self.conn = conn
        pm = serial.rfc2217.PortManager(self.uart, _Writer(conn))
        original = pm._telnet_process_subnegotiation

        def spy(sub):
            self.subnegotiations.append(bytes(sub[:2]))
            original(sub)
        pm._telnet_process_subnegotiation = spy
        pump = threading.Thread(target=self._uart_to_socket, args=(conn, pm), daemon=True)
        self._threads.append(pump)
        pump.start()
        while not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except OSError:
                break
            if not data:
                break
            self.uart.write(b"".join(pm.filter(data)))

    def _uart_to_socket(self, conn, pm):
        while not self._stop.is_set():
            data = self.uart.read(4096)
            if data:
                try:
                    pm.connection.write(b"".join(pm.escape(data)))
                except OSError:
                    break

    def count(self, option: int) -> int:
        return sum(1 for s in self.subnegotiations if s[1] == option)

    def close(self):
        self._stop.set()
        self.listener.close()
        if hasattr(self, "conn"):
            self.conn.close()
        for t in self._threads:
            t.join(5)
        self.uart.close()


@pytest.fixture
def server():
    srv = Rfc2217Server()
    yield srv
    srv.close()


SET_BAUDRATE = 1


def test_fast_client_skips_renegotiation_for_timeouts(server):
    port = open_port(server.url)
    try:
        assert isinstance(port, FastRFC2217Serial) and port.port.startswith("rfc2217:")
        port.write(b"ping\n")
        assert port.read_until(b"\n") == b"ping\n"  # the request arrived, so did the negotiation before it
        before = server.count(SET_BAUDRATE)
        assert before == 1
        for t in (0.01, 0.5, 3, None, 0.1):
            port.timeout = t
        port.baudrate = 460800  # a real change is still negotiated (and waited for)
        assert server.count(SET_BAUDRATE) == before + 1
    finally:
        port.close()


def test_fast_client_sends_control_lines_in_order(server):
    port = open_port(server.url)
    try:
        SerialLinesReset(port).enter_download()
        with server.uart.changed:
            assert server.uart.changed.wait_for(lambda: ("dtr", False) in server.uart.lines[-1:], 5)
        # after open's initial state: RTS on (EN low), DTR on + RTS off (IO0 low as EN rises), DTR off
        assert server.uart.lines[-5:] == [("dtr", False), ("rts", True), ("dtr", True), ("rts", False),
                                          ("dtr", False)]
    finally:
        port.close()


def test_pyserial_client_still_works(server):
    port = serial.serial_for_url(server.url, timeout=1)
    try:
        assert type(port) is serial.rfc2217.Serial
        port.write(b"hello\n")
        assert port.read_until(b"\n") == b"hello\n"
    finally:
        port.close()


def test_dispatch_loop_and_errors():
    port = open_port("loop://")
    try:
        assert not isinstance(port, FastRFC2217Serial)
        port.write(b"x")
        assert port.read(1) == b"x"
    finally:
        port.close()
    with pytest.raises(serial.SerialException, match="cannot open serial port /dev/hil-no-such-port"):
        open_port("/dev/hil-no-such-port")
    with pytest.raises(serial.SerialException, match="gopher://x"):
        open_port("gopher://x")
    listener = socket.create_server(("127.0.0.1", 0))
    free = listener.getsockname()[1]
    listener.close()
    with pytest.raises(serial.SerialException, match=f"rfc2217://127.0.0.1:{free}.*hil sim"):
        open_port(f"rfc2217://127.0.0.1:{free}")
