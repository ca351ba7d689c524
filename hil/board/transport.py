"""Serial transports: open a board's port from a URL.

* ``/dev/...`` (or any path): a local UART through pyserial.
* ``rfc2217://host:port``: the harness's :class:`FastRFC2217Serial` (pyserial's client stays
  reachable through ``serial.serial_for_url`` for compatibility checks).
* ``socket://host:port``: raw TCP, no reset lines (esptool then cannot reset the chip).
* ``loop://``: pyserial's loopback, for self-tests.

Why a fast RFC2217 client: pyserial's client renegotiates baud rate, data size, parity and stop bits
(four round trips polled at 50 ms) every time ``.timeout`` is set, and waits for an acknowledgement
after each DTR/RTS change and purge. esptool sets the timeout around every command, so a 1 MiB write
takes ~36 s over loopback. Skipping renegotiation when only timeouts changed and not waiting for
control/purge acks (TCP keeps them in order) brings it to ~1.5 s.

Why opening sends no DTR/RTS: pyserial's client sends its line states as soon as the port is open,
asserted by default. esptool's RFC2217 server (``esp_rfc2217_server``) reads those commands as
triggers, not levels: DTR on starts its bootloader reset, RTS off (outside one) a hard reset. So the
harness's client starts with both deasserted (as a local port is opened) and sends neither on open:
the chip keeps running, and the first reset the harness asks for is the first the board sees.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import serial
import serial.rfc2217

from hil.board.port_access import access_denied
from hil.serial_port import SerialPort

DEFAULT_BAUD = 115200


class FastRFC2217Serial(serial.rfc2217.Serial):
    """pyserial's RFC2217 client without the per-timeout renegotiation and control-line acks."""

    # the base class's private state, which types-pyserial does not declare
    _socket: socket.socket | None
    _thread: threading.Thread | None
    _rfc2217_options: dict[str, serial.rfc2217.TelnetSubnegotiation] | None  # None until open()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._applied_settings: tuple[object, ...] | None = None
        self._opening = False
        super().__init__(*args, **kwargs)

    def _line_settings(self) -> tuple[object, ...]:
        return (self.baudrate, self.bytesize, self.parity, self.stopbits, self.rtscts, self.xonxoff)

    def _reconfigure_port(self) -> None:
        if self.write_timeout is not None:
            # same contract as the base class: esptool catches this and sets it back to None
            raise NotImplementedError("write_timeout is not supported over RFC2217")
        wanted = self._line_settings()
        if wanted == self._applied_settings:
            return  # only a timeout changed: timeouts are local to the client
        super()._reconfigure_port()  # type: ignore[misc]  # pyserial's private hook, absent from types-pyserial
        self._applied_settings = wanted

    def _option(self, name: str) -> serial.rfc2217.TelnetSubnegotiation:
        if self._rfc2217_options is None:
            raise serial.PortNotOpenError()
        return self._rfc2217_options[name]

    def rfc2217_send_purge(self, value: bytes) -> None:
        """Send a purge request without waiting for the server's acknowledgement."""
        self._option("purge").set(value)

    def rfc2217_set_control(self, value: bytes) -> None:
        """Send a control (DTR/RTS/break/flow) change without waiting for the acknowledgement."""
        self._option("control").set(value)

    def _update_dtr_state(self) -> None:
        if not self._opening:  # open() would send the state: a reset trigger for esptool's server
            super()._update_dtr_state()  # type: ignore[misc]  # pyserial private hook, absent from types-pyserial

    def _update_rts_state(self) -> None:
        if not self._opening:
            super()._update_rts_state()  # type: ignore[misc]

    def open(self) -> None:
        """Open and negotiate without touching DTR/RTS; a reopened port negotiates its line settings
        again."""
        self._applied_settings = None
        self._opening = True
        try:
            super().open()
        finally:
            self._opening = False

    def close(self) -> None:
        """Close the socket and join the reader thread (without pyserial's fixed 0.3 s pause)."""
        self.is_open = False
        sock, self._socket = self._socket, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # peer already gone: closing is all that is left to do
            sock.close()
        if self._thread is not None:
            self._thread.join(7)
            self._thread = None


def open_port(url: str, baud: int = DEFAULT_BAUD, timeout: float | None = 0.1) -> SerialPort:
    """Open the serial port named by ``url`` and return it (open).

    ``rfc2217://`` uses :class:`FastRFC2217Serial`; ``socket://`` and ``loop://`` go through
    pyserial's URL handlers; anything else is a device path opened exclusively. Raises
    ``serial.SerialException`` with the URL and a hint when the port cannot be opened.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    try:
        if scheme == "rfc2217":
            port: SerialPort = FastRFC2217Serial(None, baudrate=baud, timeout=timeout)
            port.port = url
            port.dtr = False  # deasserted before open, and open() sends neither (see the module docstring)
            port.rts = False
            port.open()
        elif scheme:
            port = serial.serial_for_url(url, baudrate=baud, timeout=timeout)
        else:
            port = serial.Serial(None, baudrate=baud, timeout=timeout, exclusive=True)
            port.port = url
            # don't assert DTR/RTS on open: with an auto-reset circuit that would hold or reset the chip
            port.dtr = False
            port.rts = False
            port.open()
    except serial.SerialException as exc:
        denied = access_denied(url, exc)  # EACCES on a device: name its group and the usermod fix
        if denied is not None:
            raise denied from exc
        raise serial.SerialException(
            f"cannot open serial port {url}: {exc}. Check the port name (`hil boards` lists them), "
            "that the board or `hil sim` is running, and that no other process holds the port"
        ) from exc
    except ValueError as exc:  # pyserial's answer to an unknown URL scheme
        raise serial.SerialException(
            f"cannot open serial port {url}: {exc}; use a device path, rfc2217://, socket:// or loop://"
        ) from exc
    return port
