"""The USB-Serial/JTAG personality: the virtual chip's serial port as its built-in USB controller.

What a real ESP USB-Serial/JTAG controller (ESP32-C3/S3/C6/H2, VID:PID 303a:1001) does that matters
to a host, and how the virtual board models it:

* **Re-enumeration.** A reset that also resets the USB controller takes the device off the bus: the
  host's port vanishes (the tty node, or here the RFC2217 connection), and the device enumerates
  again once the chip runs — a fraction of a second later, possibly under another /dev/ttyACM* name.
  That is every power-on (hub power cycle, brownout, power cut) and every EN pin reset (the reset
  button); esptool's docs say the same of system resets (``--after watchdog-reset`` "may cause the
  port to re-enumerate"). Modelled: the server drops its client at once and refuses connections until
  ``gap`` seconds after the chip runs again. Output sent meanwhile is lost, as on USB-CDC with no host
  polling the IN endpoint.
* **Resets the controller makes itself keep the link.** A chip reset the host requests through the
  CDC control lines, and a CPU reset (``esp_restart``, a panic), do not reset the controller: that
  is how esptool resets into the ROM loader and syncs on the same open port, and why a panic's ROM
  banner shows in the monitor. Modelled: those resets do not drop the client.
* **Control lines are decoded by the controller, not by an RC auto-reset circuit.** RTS asserted
  with DTR released holds the chip in reset; DTR asserted alone latches "boot from download" for the
  next reset release; both released clears the latch (esptool's ``USBJTAGSerialReset`` walks through
  DTR=RTS=1 between the two for that reason). So esptool's USB-JTAG sequence enters the loader and
  its hard reset boots the app. (The classic UART sequence enters the loader only when DTR was
  asserted alone before it, as pyserial's open does; the real controller's exact state machine is
  not public, this is the simplest one that fits esptool's sequences and their comments.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hil.sim.board import VirtualBoard

log = logging.getLogger(__name__)

DEFAULT_ENUMERATION_GAP = 0.3  # s from the chip running again to the host seeing its port (~0.2-1 s)


class UsbSerialJtag:
    """The host-facing USB device of one virtual board. ``detach`` / ``attach`` are the server's:
    drop the client and stop listening / listen again."""

    def __init__(
        self,
        board: VirtualBoard,
        gap: float = DEFAULT_ENUMERATION_GAP,
        *,
        detach: Callable[[], None],
        attach: Callable[[], None],
    ) -> None:
        if gap < 0:
            raise ValueError(f"board {board.name}: USB re-enumeration gap must be >= 0 s, not {gap:g}")
        self.board = board
        self.gap = gap
        self._detach, self._attach = detach, attach
        # control-line decoder: touched only by the thread serving the host (the server's)
        self._in_reset = False
        self._download_latch = False
        self._host_thread: int | None = None  # ident of the thread applying host line changes right now
        # the link: guarded by _lock; the callbacks run outside it
        self._lock = threading.Condition()
        self._present = True
        self._generation = 0  # bumps on every drop, so a stale re-enumeration timer does nothing
        self._timer: threading.Timer | None = None
        self.enumerations = 0  # times the device came back after a drop

    @property
    def present(self) -> bool:
        """True while the device is on the bus (the host can open the port)."""
        with self._lock:
            return self._present

    def wait_present(self, timeout: float) -> bool:
        """Wait until the device is on the bus; False if it is not within ``timeout`` s."""
        with self._lock:
            return self._lock.wait_for(lambda: self._present, timeout)

    def start(self) -> UsbSerialJtag:
        """Watch the chip's resets."""
        self.board.uart.watch_running(self._running_changed)
        return self

    def close(self) -> None:
        """Stop watching; a pending re-enumeration is cancelled."""
        self.board.uart.watch_running(None)
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    # -- host control lines (CDC SET_CONTROL_LINE_STATE) ------------------------------------------------
    def set_lines(self, dtr: bool, rts: bool) -> None:
        """The host's DTR/RTS (True = asserted), decoded as the controller does; the board's EN/IO0
        are driven through its reset-line inputs in the levels that produce the decoded effect."""
        reset = rts and not dtr
        self._host_thread = threading.get_ident()
        try:
            if reset and not self._in_reset:
                self._in_reset = True
                self.board.set_lines(dtr=False, rts=True)  # EN low
            elif not reset and self._in_reset:
                self._in_reset = False
                if self._download_latch:
                    self.board.set_lines(dtr=True, rts=False)  # EN rises with IO0 low: the ROM latches download
                self.board.set_lines(dtr=False, rts=False)
                self._download_latch = False
            if not self._in_reset:
                if dtr and not rts:
                    self._download_latch = True
                elif not dtr and not rts:
                    self._download_latch = False
        finally:
            self._host_thread = None

    # -- link ------------------------------------------------------------------------------------------
    def _running_changed(self, running: bool) -> None:
        if not running:
            if threading.get_ident() == self._host_thread:
                return  # a reset the controller made itself: it stays on the bus
            self._drop()
        else:
            self._chip_started()

    def _drop(self) -> None:
        with self._lock:
            self._generation += 1
            timer, self._timer = self._timer, None
            was_present, self._present = self._present, False
        if timer is not None:
            timer.cancel()
        if was_present:
            log.info("board %s: USB device left the bus (chip reset or power loss)", self.board.name)
            self._detach()

    def _chip_started(self) -> None:
        with self._lock:
            if self._present or self._timer is not None:
                return  # a CPU reset or a host-requested one: nothing happened on the bus
            generation = self._generation
            timer = threading.Timer(self.gap, self._enumerated, args=(generation,))
            timer.daemon = True
            self._timer = timer
        timer.start()

    def _enumerated(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation or self._present:
                return  # dropped again meanwhile: a newer boot schedules its own enumeration
        self._attach()  # listening before anyone is told the device is there
        with self._lock:
            current = generation == self._generation
            if current:
                self._present, self._timer = True, None
                self.enumerations += 1
                self._lock.notify_all()
        if not current:  # dropped while the listener came up: take it down again
            self._detach()
            return
        log.info("board %s: USB device enumerated again after %.2f s", self.board.name, self.gap)
