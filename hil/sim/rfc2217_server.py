"""Serves one virtual board's UART0 over RFC2217 (Telnet COM-PORT option) on 127.0.0.1.

pyserial's own ``PortManager`` does the Telnet/RFC2217 negotiation; it drives a small port shim that
forwards DTR/RTS to the board's reset lines and baud changes to its UART. Like a physical port the
server is exclusive: one client at a time, the next connection is served once the current one
closes. Incoming data is filtered in chunks (only bytes around an IAC go through pyserial's
byte-wise filter) so flashing is not bounded by Python per-byte loops.
"""

from __future__ import annotations

import logging
import socket
import threading

import serial
from serial.rfc2217 import IAC, M_NORMAL, PortManager

from hil.sim.board import VirtualBoard

log = logging.getLogger(__name__)


class _PortShim:
    """The 'serial port' PortManager configures: lines go to the board, settings are remembered."""

    bytesize = serial.EIGHTBITS
    parity = serial.PARITY_NONE
    stopbits = serial.STOPBITS_ONE
    xonxoff = False
    rtscts = False
    break_condition = False
    cts = dsr = ri = cd = False

    def __init__(self, board: VirtualBoard) -> None:
        self._board = board
        self._dtr = False
        self._rts = False

    @property
    def baudrate(self) -> int:
        return self._board.uart.baudrate

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        self._board.uart.baudrate = int(value)  # the ROM auto-bauds to the host's rate

    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._dtr = bool(value)
        self._board.set_lines(dtr=self._dtr)

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts = bool(value)
        self._board.set_lines(rts=self._rts)

    def reset_input_buffer(self) -> None:
        """Purge of the server's receive buffer: chip output is sent as produced, nothing is queued."""

    def reset_output_buffer(self) -> None:
        """Purge of the server's transmit buffer: host bytes reach the chip at once, nothing is queued."""


class _Connection:
    """Thread-safe writer for one client socket (PortManager replies and chip output share it)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            try:
                self.sock.sendall(data)
            except OSError:
                pass  # client gone: the reader loop notices and ends the session

    def send_serial(self, data: bytes) -> None:
        """Chip output with Telnet IAC doubled."""
        self.write(data.replace(IAC, IAC + IAC))


class _ChunkPortManager(PortManager):
    """PortManager with a chunked fast path for plain data between IACs."""

    def filter_chunk(self, data: bytes) -> bytes:
        """Return the serial payload in ``data``, processing Telnet/RFC2217 sequences."""
        out = bytearray()
        pos, end = 0, len(data)
        while pos < end:
            if self.mode == M_NORMAL and self.suboption is None:
                nxt = data.find(IAC, pos)
                if nxt < 0:
                    out += data[pos:]
                    break
                out += data[pos:nxt]
                pos = nxt
            # slow path: one byte through pyserial's state machine until plain data resumes
            out += b"".join(self.filter(data[pos : pos + 1]))
            pos += 1
        return bytes(out)


class Rfc2217Server:
    """TCP server for one board. ``start()`` binds (port 0 = any free port), ``close()`` stops."""

    def __init__(self, board: VirtualBoard, host: str = "127.0.0.1", port: int = 0) -> None:
        self.board = board
        self.host = host
        self.port = port
        self._listener: socket.socket | None = None
        self._active: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.connections = 0

    @property
    def url(self) -> str:
        """``rfc2217://127.0.0.1:PORT`` (valid after ``start()``)."""
        return f"rfc2217://{self.host}:{self.port}"

    def start(self) -> Rfc2217Server:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError as exc:
            listener.close()
            raise OSError(
                exc.errno,
                f"board {self.board.name}: cannot listen on {self.host}:{self.port}: "
                f"{exc.strerror}; pick another --port or use --port 0",
            ) from exc
        listener.listen(4)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._thread = threading.Thread(
            target=self._serve_forever, args=(listener,), name=f"rfc2217:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, drop the current client, wait for the server thread."""
        self._closing.set()
        for sock in (self._listener, self._active):
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # not connected / already closed
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> Rfc2217Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve_forever(self, listener: socket.socket) -> None:
        while not self._closing.is_set():
            try:
                sock, peer = listener.accept()
            except OSError:
                break  # listener shut down by close()
            self.connections += 1
            self._active = sock
            try:
                self._serve_client(sock, peer)
            finally:
                self._active = None
                sock.close()

    def _serve_client(self, sock: socket.socket, peer: tuple) -> None:
        log.info("board %s: RFC2217 client %s:%s connected", self.board.name, *peer[:2])
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(sock)
        # PortManager duck-types both arguments (it uses a few attributes of each); types-pyserial
        # declares them as serial.Serial
        manager = _ChunkPortManager(_PortShim(self.board), conn)  # type: ignore[arg-type]
        self.board.uart.attach(conn.send_serial)
        try:
            while True:
                try:
                    data = sock.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                payload = manager.filter_chunk(data)
                if payload:
                    self.board.host_write(payload)
        finally:
            self.board.uart.detach()
            self.board.set_lines(dtr=False, rts=False)  # port closed: lines released
            log.info("board %s: RFC2217 client %s:%s disconnected", self.board.name, *peer[:2])
