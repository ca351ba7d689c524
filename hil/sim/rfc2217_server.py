"""Serves one virtual board's UART0 over RFC2217 (Telnet COM-PORT option) on 127.0.0.1.

pyserial's own ``PortManager`` does the Telnet/RFC2217 negotiation; it drives a small port shim that
forwards DTR/RTS to the board's reset lines and baud changes to its UART. Like a physical port the
server is exclusive: one client at a time, the next connection is served once the current one
closes. Incoming data is filtered in chunks (only bytes around an IAC go through pyserial's
byte-wise filter) so flashing is not bounded by Python per-byte loops.

With ``usb_jtag_gap`` the port is the chip's USB-Serial/JTAG controller (:mod:`hil.sim.usb_jtag`):
the control lines are decoded as that controller does, and when a reset takes the device off the bus
the server drops its client and closes its listening socket (connections are refused, as opening a
vanished tty fails) until the device enumerates again on the same TCP port.

How the client's DTR/RTS commands reach the lines is the server's ``resets`` personality:

* ``"esptool"`` (``hil sim``'s default): as esptool's ``esp_rfc2217_server``, whose commands are
  triggers, not levels, because RFC2217 cannot carry their timing: DTR on starts a bootloader reset
  (esptool's UnixTightReset on the real lines), DTR off ends it, RTS off outside one is a hard reset
  (HardReset), everything else is ignored. A client that opens with DTR asserted (pyserial's default)
  resets the chip into the ROM loader, as on such a bench. The sequences reach the lines in order,
  without esptool's fixed waits (the virtual board's EN has no RC).
* ``"lines"``: DTR/RTS are levels on the lines (ser2net, pyserial's PortManager).
"""

from __future__ import annotations

import logging
import socket
import threading

import serial
from serial.rfc2217 import IAC, M_NORMAL, PortManager

from hil.sim.board import VirtualBoard
from hil.sim.usb_jtag import UsbSerialJtag

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

    def __init__(self, board: VirtualBoard, usb: UsbSerialJtag | None = None) -> None:
        self._board = board
        self._usb = usb
        self._dtr = False
        self._rts = False

    def _lines_changed(self, **line: bool) -> None:
        if self._usb is not None:
            self._usb.set_lines(self._dtr, self._rts)
        else:
            self._board.set_lines(**line)

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
        self._lines_changed(dtr=self._dtr)

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts = bool(value)
        self._lines_changed(rts=self._rts)

    def client_connected(self) -> None:
        """A client connected: the lines stay as they are."""

    def reset_input_buffer(self) -> None:
        """Purge of the server's receive buffer: chip output is sent as produced, nothing is queued."""

    def reset_output_buffer(self) -> None:
        """Purge of the server's transmit buffer: host bytes reach the chip at once, nothing is queued."""


class _EsptoolServerLines(_PortShim):
    """esp_rfc2217_server's reading of the client's DTR/RTS commands (see the module docstring)."""

    def __init__(self, board: VirtualBoard, usb: UsbSerialJtag | None = None) -> None:
        super().__init__(board, usb)
        self._download = False  # esptool's is_download_mode: a bootloader reset was started

    def _set(self, dtr: bool, rts: bool) -> None:
        self._dtr, self._rts = dtr, rts
        self._lines_changed(dtr=dtr, rts=rts)

    def client_connected(self) -> None:
        """esp_rfc2217_server asserts both lines when a client connects (EN and IO0 stay high)."""
        self._set(True, True)

    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        if not value:
            self._download = False
            self._set(False, self._rts)
        elif not self._download:
            self._download = True
            # esptool's UnixTightReset (esp_pylib's unix_tight_bootloader_reset) on the lines
            for dtr, rts in ((False, False), (True, True), (False, True), (True, False), (False, False)):
                self._set(dtr, rts)

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        if not value and not self._download:
            self._set(self._dtr, True)  # esptool's HardReset: EN low, then high
            self._set(self._dtr, False)


RESET_PERSONALITIES: dict[str, type[_PortShim]] = {"esptool": _EsptoolServerLines, "lines": _PortShim}


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
    """TCP server for one board. ``start()`` binds (port 0 = any free port), ``close()`` stops.
    ``usb_jtag_gap`` (seconds): serve the board as a USB-Serial/JTAG device that re-enumerates.
    ``resets``: how DTR/RTS commands reach the lines (``RESET_PERSONALITIES``, module docstring)."""

    def __init__(
        self,
        board: VirtualBoard,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        usb_jtag_gap: float | None = None,
        resets: str = "lines",
    ) -> None:
        if resets not in RESET_PERSONALITIES:
            raise ValueError(
                f"board {board.name}: unknown RFC2217 reset personality {resets!r}; use one of "
                f"{sorted(RESET_PERSONALITIES)}"
            )
        self.resets = resets
        self.board = board
        self.host = host
        self.port = port
        self._cond = threading.Condition()  # guards _listener/_active against USB drops
        self._listener: socket.socket | None = None
        self._active: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.connections = 0
        self.usb: UsbSerialJtag | None = None
        if usb_jtag_gap is not None:
            self.usb = UsbSerialJtag(board, usb_jtag_gap, detach=self._usb_detached, attach=self._usb_attached)

    @property
    def url(self) -> str:
        """``rfc2217://127.0.0.1:PORT`` (valid after ``start()``)."""
        return f"rfc2217://{self.host}:{self.port}"

    def start(self) -> Rfc2217Server:
        self._listener = self._listen()
        self._thread = threading.Thread(target=self._serve_forever, name=f"rfc2217:{self.port}", daemon=True)
        self._thread.start()
        if self.usb is not None:
            self.usb.start()
        return self

    def _listen(self) -> socket.socket:
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
        return listener

    def close(self) -> None:
        """Stop accepting, drop the current client, wait for the server thread."""
        if self.usb is not None:
            self.usb.close()
        with self._cond:
            self._closing.set()
            listener, active = self._listener, self._active
            self._listener = None
            self._cond.notify_all()
        _shutdown(listener, active)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if listener is not None:
            listener.close()

    def _usb_detached(self) -> None:
        """The USB device left the bus: the client's port is gone and nobody can open it."""
        with self._cond:
            listener, active = self._listener, self._active
            self._listener = None
        self.board.uart.detach()  # from now on the chip's output is lost
        _shutdown(listener, active)
        if listener is not None:
            listener.close()

    def _usb_attached(self) -> None:
        """The USB device enumerated again: listen on the same TCP port."""
        try:
            listener = self._listen()
        except OSError:
            log.error("board %s: cannot listen again on %s:%s", self.board.name, self.host, self.port, exc_info=True)
            return
        with self._cond:
            if self._closing.is_set():
                listener.close()
                return
            self._listener = listener
            self._cond.notify_all()

    def __enter__(self) -> Rfc2217Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve_forever(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._listener is not None or self._closing.is_set())
                if self._closing.is_set():
                    return
                listener = self._listener
            assert listener is not None  # narrowed by the wait above
            try:
                sock, peer = listener.accept()
            except OSError:
                continue  # listener shut down by close() or by the USB device leaving the bus
            with self._cond:
                if self._listener is not listener:  # the device left the bus as this client came in
                    sock.close()
                    continue
                self._active = sock
            self.connections += 1
            try:
                self._serve_client(sock, peer)
            finally:
                with self._cond:
                    self._active = None
                sock.close()

    def _serve_client(self, sock: socket.socket, peer: tuple) -> None:
        log.info("board %s: RFC2217 client %s:%s connected", self.board.name, *peer[:2])
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(sock)
        # PortManager duck-types both arguments (it uses a few attributes of each); types-pyserial
        # declares them as serial.Serial
        shim = RESET_PERSONALITIES[self.resets](self.board, self.usb)
        manager = _ChunkPortManager(shim, conn)  # type: ignore[arg-type]
        shim.client_connected()
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
            # port closed: lines released
            if self.usb is not None:
                self.usb.set_lines(dtr=False, rts=False)
            else:
                self.board.set_lines(dtr=False, rts=False)
            log.info("board %s: RFC2217 client %s:%s disconnected", self.board.name, *peer[:2])


def _shutdown(*socks: socket.socket | None) -> None:
    """Wake whoever blocks on these sockets (accept, recv): shut them down, ignoring closed ones."""
    for sock in socks:
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not connected / already closed
