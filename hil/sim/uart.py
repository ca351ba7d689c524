"""UART0 of the virtual chip: host→chip receive buffer and chip→host transmit to whoever listens.

Transmit goes straight to the attached host sink (the RFC2217 connection); with no host attached
the bytes are lost, as on a real UART with nothing on the other end. Receive buffers bytes for the
code running on the chip: raw reads for the ROM loader, lines for the firmware console.

Whoever models the host side of the link (the USB-Serial/JTAG personality) can watch the chip
start and stop through ``watch_running``: the board enables receive on every boot (a software
restart too) and disables it whenever the CPU stops (EN low, power off, a power cut).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hil.sim.runtime import Halted

log = logging.getLogger(__name__)

RX_LIMIT = 1 << 20  # bytes buffered for the chip before new input is dropped (a full FIFO)


class Uart:
    """One UART; thread-safe. Readers pass a ``stop`` event that ends their wait with ``Halted``."""

    def __init__(self, baudrate: int = 115200) -> None:
        self._cond = threading.Condition()
        self._rx = bytearray()
        self._rx_enabled = False
        self._sink: Callable[[bytes], None] | None = None
        self._sink_lock = threading.Lock()
        self._running_listener: Callable[[bool], None] | None = None
        self.baudrate = baudrate
        self.dropped_tx = 0
        self.dropped_rx = 0

    # -- host side -------------------------------------------------------------------------------------
    def attach(self, sink: Callable[[bytes], None]) -> None:
        """A host connected: chip output now goes to ``sink``."""
        with self._sink_lock:
            self._sink = sink

    def detach(self) -> None:
        """The host went away: chip output is lost from now on."""
        with self._sink_lock:
            self._sink = None

    @property
    def attached(self) -> bool:
        return self._sink is not None

    def receive(self, data: bytes) -> None:
        """Bytes from the host; dropped while the chip cannot receive (off, in reset) or is full."""
        if not data:
            return
        with self._cond:
            if not self._rx_enabled:
                self.dropped_rx += len(data)
                return
            room = RX_LIMIT - len(self._rx)
            if len(data) > room:
                self.dropped_rx += len(data) - room
                log.warning("UART RX overflow: %d bytes dropped", len(data) - room)
                data = data[:room]
            self._rx += data
            self._cond.notify_all()

    def watch_running(self, listener: Callable[[bool], None] | None) -> None:
        """Call ``listener(True)`` on every boot and ``listener(False)`` whenever the chip stops, on
        the thread that caused it (None: stop watching)."""
        self._running_listener = listener

    # -- chip side ---------------------------------------------------------------------------------------
    def enable_rx(self, enabled: bool) -> None:
        """Chip running (True) or stopped (False: the FIFO is cleared, input is ignored)."""
        with self._cond:
            self._rx_enabled = enabled
            self._rx.clear()
            self._cond.notify_all()
        listener = self._running_listener
        if listener is not None:
            listener(enabled)

    def transmit(self, data: bytes) -> None:
        """Send ``data`` to the host, or lose it if none is attached."""
        with self._sink_lock:
            sink = self._sink
            if sink is None:
                self.dropped_tx += len(data)
                return
            sink(data)

    def read(self, stop: threading.Event, timeout: float | None = None) -> bytes:
        """Everything buffered, waiting for at least one byte; ``b''`` on timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._rx or stop.is_set(), timeout):
                return b""
            if stop.is_set():
                raise Halted("CPU stopped while reading UART0")
            data = bytes(self._rx)
            self._rx.clear()
            return data

    def read_line(
        self, stop: threading.Event, timeout: float | None = None, wake: threading.Event | None = None
    ) -> str | None:
        """Next ``\\n``-terminated line without its line ending; ``None`` on timeout, or when ``wake``
        is set (it is cleared then; set it and call :meth:`wake` to interrupt a waiting reader)."""
        woken = wake.is_set if wake is not None else (lambda: False)
        with self._cond:
            if not self._cond.wait_for(lambda: b"\n" in self._rx or stop.is_set() or woken(), timeout):
                return None
            if stop.is_set():
                raise Halted("CPU stopped while reading a console line")
            if b"\n" not in self._rx:  # woken through ``wake``, no line yet
                if wake is not None:
                    wake.clear()
                return None
            line, _, rest = bytes(self._rx).partition(b"\n")
            self._rx[:] = rest
            return line.rstrip(b"\r").decode("utf-8", errors="replace")

    def wake(self) -> None:
        """Wake blocked readers so they notice their ``stop`` event."""
        with self._cond:
            self._cond.notify_all()
