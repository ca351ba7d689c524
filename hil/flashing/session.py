"""FlashSession: esptool connected to a board through the port the harness already has open.

connect = reset into the ROM loader (DTR/RTS), detect the chip, upload the stub, optionally raise
the baud rate, attach the SPI flash and set its size. Every step is bounded (``run_bounded``).
The reset is the caller's ``enter_loader`` (the board's reset strategy, hil.board.reset) and/or
esptool's own ``esptool_reset`` mode ("default-reset": its sequences with fixed 100 + 50 ms pulses;
"no-reset": a board without reset lines, already in the loader), tried in that order.
After the work, :meth:`FlashSession.hard_reset` restarts the chip while the stub is still connected,
with esptool's chip-specific hard reset (an ESP32-S3 on USB-OTG needs its RTC watchdog).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import serial

from hil.flashing.esptool_host import FlashError, Sink, esptool_module, run_bounded
from hil.flashing.plan import FlashRegion
from hil.flashing.timing import ROM_BAUD, FlashTiming, compressed_size
from hil.serial_port import SerialPort

T = TypeVar("T")
ROM_BAUDS = (ROM_BAUD, 57600)  # the ROM detects the rate from SYNC: a lower one helps a marginal link
CONNECT_ATTEMPTS = 3
CONNECT_TIMEOUT = 30.0
HARD_RESET_TIMEOUT = 10.0  # esptool's longest: USB-OTG watchdog reset, 0.5 s, plus register round trips
ROM_WAITING = b"waiting for download"  # the ROM's last line before it listens for SYNC
# Bounds the wait for that line after the board's own reset. A ROM whose output is off (eFuse) or at
# another rate (26 MHz crystal: 74880 baud) never shows it; esptool's SYNC is then sent after this.
LOADER_READY_TIMEOUT = 1.0
ProgressFn = Callable[[str, int, int], None]  # (label, bytes done, bytes total)


def chip_key(chip_name: str) -> str:
    """esptool's CHIP_NAME ("ESP32-C6") as a chip key ("esp32c6")."""
    return chip_name.lower().replace("-", "")


class FlashConnectError(FlashError):
    """The ROM loader did not answer at any baud rate."""


class FlashSession:
    """One esptool connection on an open port. The port stays the caller's; the chip is left in
    the stub loader until the caller resets it."""

    def __init__(
        self,
        port: SerialPort,
        board: str,
        *,
        flash_baud: int | None = None,
        progress: ProgressFn | None = None,
        timeout_scale: float = 1.0,
        connect_attempts: int = CONNECT_ATTEMPTS,
        enter_loader: Callable[[], None] | None = None,
        esptool_reset: str | None = "default-reset",
    ) -> None:
        if enter_loader is None and esptool_reset is None:
            raise ValueError(f"{board}: a flash session needs enter_loader or esptool_reset")
        self.port = port
        self.enter_loader = enter_loader
        self.esptool_reset = esptool_reset
        self.connect_attempts = connect_attempts
        self.board = board
        self.flash_baud = flash_baud
        self.progress = progress
        self.timeout_scale = timeout_scale
        self.transcript: list[str] = []  # esptool's output, for errors and logs
        self._esp: Any = None
        self.chip = ""
        self.mac = ""
        self.baud = ROM_BAUD  # the link's rate once connected (the flash baud after change_baud)

    @property
    def port_name(self) -> str:
        return str(getattr(self.port, "port", self.port))

    def _call(self, step: str, timeout: float, call: Callable[[], T], label: str = "") -> T:
        progress = self.progress
        sink = Sink(
            on_progress=(lambda done, total: progress(label, done, total)) if progress else None,
            transcript=self.transcript,
        )
        bound = timeout * self.timeout_scale
        fatal = esptool_module().FatalError
        try:
            return run_bounded(
                call,
                bound,
                sink,
                abort=self.port.close,
                describe=lambda t: (
                    f"{self.board}: esptool step '{step}' on {self.port_name} did not finish within {t:.0f} s "
                    "(the device stopped answering: no reply after the stub upload, board held in reset, or a "
                    "cable/hub problem). The port was closed; reset the board and retry"
                ),
            )
        except (fatal, serial.SerialException, OSError) as exc:
            raise FlashError(
                f"{self.board}: esptool step '{step}' on {self.port_name} failed: {str(exc).strip()}"
            ) from exc

    def connect(self) -> None:
        """Enter the ROM loader, detect the chip, run the stub, attach flash. Retries at a lower
        baud; raises :class:`FlashConnectError` naming the port and the likely causes."""
        esptool = esptool_module()
        errors = []
        resets = ([True] if self.enter_loader is not None else []) + ([False] if self.esptool_reset else [])
        for baud, own_reset in [(baud, own) for baud in ROM_BAUDS for own in resets]:
            if not self.port.is_open:
                self.port.open()  # esptool closes the port when a connect fails
            how = " after the board's own reset" if own_reset else ""
            try:
                self._esp = self._call(
                    f"connect at {baud} baud{how}", CONNECT_TIMEOUT, partial(self._connect, esptool, baud, own_reset)
                )
                break
            except FlashError as exc:
                cause = exc.__cause__ or exc  # esptool's own words, without our prefix
                errors.append(f"{baud} baud{how}: {str(cause).strip().splitlines()[0]}")
        else:
            manual = (
                "the board has reset = 'none': put it in download mode before flashing (hold BOOT, press and "
                "release EN, release BOOT)"
                if self.enter_loader is None and self.esptool_reset == "no-reset"
                else "the board is held in reset or lacks the auto-reset circuit (hold BOOT and press EN)"
            )
            raise FlashConnectError(
                f"{self.board}: cannot connect to the ESP ROM loader on {self.port_name} ({'; '.join(errors)}). "
                f"Likely causes: wrong port (`hil boards` lists them); {manual}; another process uses the port "
                "(a monitor or another run)"
            )
        self.chip = chip_key(self._esp.CHIP_NAME)
        self.mac = ":".join(f"{b:02x}" for b in self._call("read MAC", 10, self._esp.read_mac))

    def _connect(self, esptool: Any, baud: int, own_reset: bool) -> Any:
        cmds = esptool.cmds
        if own_reset and self.enter_loader is not None:
            self.enter_loader()
            self._await_rom_loader()
            esp = cmds.detect_chip(self.port, baud, "no-reset", connect_attempts=1)
        else:
            esp = cmds.detect_chip(self.port, baud, self.esptool_reset, connect_attempts=self.connect_attempts)
        esp = cmds.run_stub(esp)
        self.baud = baud
        if self.flash_baud and self.flash_baud > baud:
            esp.change_baud(self.flash_baud)
            self.baud = self.flash_baud
        cmds.attach_flash(esp)
        size = cmds.detect_flash_size(esp) or "4MB"
        esp.flash_set_parameters(esptool.util.flash_size_bytes(size))
        return esp

    def _await_rom_loader(self) -> bool:
        """Read the boot output until the ROM says it waits for download (a SYNC sent before it would be
        lost, as the chip does not listen yet); False if it did not within LOADER_READY_TIMEOUT."""
        deadline = time.monotonic() + LOADER_READY_TIMEOUT
        seen = b""
        while ROM_WAITING not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.port.timeout = remaining
            data = self.port.read(max(1, self.port.in_waiting))
            seen = seen[-len(ROM_WAITING) :] + data
        return True

    @property
    def esp(self) -> Any:
        """The connected esptool loader object."""
        if self._esp is None:
            raise FlashError(f"{self.board}: flash session on {self.port_name} is not connected")
        return self._esp

    @property
    def timing(self) -> FlashTiming:
        """The time model at the link's current baud rate (bounds of every step)."""
        return FlashTiming(self.baud)

    def flash_md5(self, offset: int, size: int) -> str:
        """MD5 (hex) of ``size`` bytes of flash at ``offset``, computed by the stub."""
        return self._call(
            f"md5 {offset:#x}+{size:#x}", self.timing.md5_bound(size), lambda: self.esp.flash_md5sum(offset, size)
        )

    def write(self, region: FlashRegion) -> None:
        """Write (compressed) and verify one region (esptool checks the flash MD5 after writing)."""
        cmds = esptool_module().cmds
        sent = compressed_size(region.data)
        self._call(
            f"write {region.label} at {region.offset:#x} ({self.timing.describe(region.size, sent)})",
            self.timing.write_bound(region.size, sent),
            lambda: cmds.write_flash(self.esp, [(region.offset, region.data)], flash_size="keep"),
            label=region.label,
        )

    def read(self, offset: int, size: int) -> bytes:
        """Read ``size`` bytes of flash at ``offset``."""
        cmds = esptool_module().cmds
        return self._call(
            f"read {offset:#x}+{size:#x}",
            self.timing.read_bound(size),
            lambda: cmds.read_flash(self.esp, offset, size, None),
        )

    def erase(self, offset: int, size: int) -> None:
        """Erase a 4 KiB-aligned region (flash reads back 0xFF)."""
        cmds = esptool_module().cmds
        self._call(
            f"erase {offset:#x}+{size:#x}",
            self.timing.erase_bound(size),
            lambda: cmds.erase_region(self.esp, offset, size),
        )

    def hard_reset(self, board_pulse: Callable[[], None] | None = None) -> str:
        """Restart the chip into its application while the stub is connected; returns how.

        esptool's hard reset of the detected chip class (an ESP32-S3/S2 on USB-OTG resets through its
        RTC watchdog, as its EN pulse would leave it in the ROM loader). ``board_pulse`` is the board's
        own EN pulse (declared timing, hil.board): used instead when the chip class has no hard reset
        of its own, where esptool's would be the same RTS pulse with a fixed 100 ms hold.
        """
        if board_pulse is not None and not chip_specific_hard_reset(self.esp):
            board_pulse()
            return "the board's EN pulse"
        self._call("hard reset", HARD_RESET_TIMEOUT, self.esp.hard_reset)
        return f"esptool's {type(self.esp).__name__}.hard_reset"


def chip_specific_hard_reset(esp: Any) -> bool:
    """True if the chip class of ``esp`` defines a hard reset beyond esptool's generic RTS pulse."""
    return type(esp).hard_reset is not esptool_module().loader.ESPLoader.hard_reset
