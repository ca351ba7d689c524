"""VirtualBoard: one virtual ESP32 — flash, eFuses, UART0, reset lines, power — and its CPU thread.

Each EN rise or power-on starts one CPU thread. It samples the strapping (IO0), prints the ROM
banner, then either serves the serial loader (download mode) or runs the ``Firmware`` the board was
given (``hil sim`` gives it the boot chain and the device app) on a ``Runtime``. EN falling or power
going off stops it: every blocking runtime call raises ``Halted`` (``PowerCut`` for an armed cut) and
the thread ends. The board is hardware: it imports no boot chain or app.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from hil.sim.chips import ChipSpec, chip_spec
from hil.sim.defects import DefectSet
from hil.sim.efuse import Efuses, format_mac
from hil.sim.flash import NorFlash
from hil.sim.loader import LoaderSession
from hil.sim.power import CutTrigger, PowerTriggers, trigger_dicts
from hil.sim.reset_lines import DEFAULT_STRAP_WINDOW, ResetLines
from hil.sim.runtime import Firmware, Halted, PowerCut, Reboot, ResetCause
from hil.sim.station import Station
from hil.sim.uart import Uart

log = logging.getLogger(__name__)

PANIC_RESET_DELAY = 0.05  # device time between "Rebooting..." and the next banner
JOIN_TIMEOUT = 5.0


class _Cpu:
    """One run of the CPU, from a reset release to the next reset or power loss."""

    def __init__(self, board: VirtualBoard, cause: ResetCause, prev: _Cpu | None) -> None:
        self.board = board
        self.cause = cause
        self.prev = prev
        self.stop = threading.Event()
        self.mode = "reset"
        self.loader: LoaderSession | None = None
        self.reset_at = time.monotonic()
        self.thread = threading.Thread(target=self._main, name=f"cpu:{board.name}", daemon=True)

    def halt(self) -> None:
        self.stop.set()
        self.board.uart.wake()
        self.board.lines.wake()

    def check(self) -> None:
        if self.stop.is_set():
            raise Halted("CPU stopped")

    def _main(self) -> None:
        if self.prev is not None and self.prev.thread is not threading.current_thread():
            self.prev.thread.join(JOIN_TIMEOUT)
        board, cause = self.board, self.cause
        download = board.lines.sample_boot_mode(board.strap_window, self.stop.is_set)
        while not self.stop.is_set():
            self.reset_at = time.monotonic()
            try:
                self._boot(cause, download)
                self.mode = "idle"
                self.stop.wait()  # firmware returned: the CPU idles until reset
                return
            except Halted:
                return
            except Reboot:
                cause = ResetCause.SW_CPU
            except Exception as exc:
                log.error("board %s: firmware raised, panicking", board.name, exc_info=True)
                self._panic(exc)
                cause = ResetCause.SW_CPU
            # Software and panic resets keep the strapping latched at the EN rise: a chip that
            # was reset into download mode comes back to it (as a real ESP32 does after esp_restart).

    def _boot(self, cause: ResetCause, download: bool) -> None:
        board = self.board
        self.check()
        board.uart.enable_rx(True)
        rt = ChipRuntime(board, self, cause)
        rt.write_line(board.chip.rom_banner)
        rt.write_line("")
        rt.write_line(
            f"rst:{cause.code:#x} ({cause.label}),{board.chip.download_boot if download else board.chip.flash_boot}"
        )
        if download:
            rt.write_line("waiting for download")
            self.mode = "download"
            self.loader = LoaderSession(
                board.chip, board.flash, board.require_efuses(), board.defects, _LoaderPort(board, self)
            )
            leave = self.loader.run()
            self.loader = None
            if leave.reboot:
                raise Reboot("loader reboot")
        self.mode = "app"
        board.firmware(rt)

    def _panic(self, exc: Exception) -> None:
        uart = self.board.uart
        if self.stop.is_set():
            return
        uart.transmit(
            f"Guru Meditation Error: Core  0 panic'ed ({type(exc).__name__}). "
            f"Exception was unhandled.\r\n{exc}\r\n\r\nRebooting...\r\n".encode()
        )
        self.stop.wait(PANIC_RESET_DELAY)


class _LoaderPort:
    """UART0 as the loader sees it, bound to one CPU run."""

    def __init__(self, board: VirtualBoard, cpu: _Cpu) -> None:
        self._board = board
        self._cpu = cpu

    def read(self) -> bytes:
        return self._board.uart.read(self._cpu.stop)

    def write(self, data: bytes) -> None:
        self._cpu.check()
        self._board.uart.transmit(data)

    @property
    def baudrate(self) -> int:
        return self._board.uart.baudrate

    def set_baudrate(self, baud: int) -> None:
        self._board.uart.baudrate = baud


class ChipRuntime:
    """The ``Runtime`` handed to code running on the chip for one boot."""

    def __init__(self, board: VirtualBoard, cpu: _Cpu, cause: ResetCause) -> None:
        self._board = board
        self._cpu = cpu
        self.chip = board.chip
        self.flash = board.flash
        self.defects = board.defects
        self.efuses = board.require_efuses()
        self.mac = self.efuses.mac
        self.net_address = board.net_address  # the station's IP: the source of every connection
        self.station = board.station  # and its mask, gateway and network namespace
        self.reset_cause = cause
        self._notified = threading.Event()

    def write_line(self, text: str) -> None:
        self._cpu.check()
        self._board.uart.transmit(text.encode("utf-8", errors="replace") + b"\r\n")

    def read_line(self, timeout: float | None = None) -> str | None:
        return self._board.uart.read_line(self._cpu.stop, timeout, self._notified)

    def notify(self) -> None:
        self._notified.set()
        self._board.uart.wake()

    def millis(self) -> int:
        return int((time.monotonic() - self._cpu.reset_at) * 1000)

    def wait(self, timeout: float) -> None:
        if self._cpu.stop.wait(max(0.0, timeout)):
            raise Halted("CPU stopped while waiting")

    def checkpoint(self, name: str, **fields: object) -> None:
        self._cpu.check()
        trigger = self._board.triggers.fire(name, fields)
        if trigger is not None:
            self._board.cut_power(self._cpu, trigger)
            raise PowerCut(f"power cut at checkpoint {name} {fields}")


class VirtualBoard:
    """A virtual ESP32 running ``firmware`` from flash after each normal reset. ``open()`` powers it
    on; ``close()`` powers it off and saves its state."""

    def __init__(
        self,
        chip: ChipSpec | str = "esp32",
        state_dir: Path | None = None,
        *,
        firmware: Firmware,
        mac: bytes | None = None,
        defects: DefectSet | None = None,
        strap_window: float = DEFAULT_STRAP_WINDOW,
        name: str | None = None,
        net_address: str = "127.0.0.1",
        station: Station | None = None,
    ) -> None:
        self.chip = chip_spec(chip) if isinstance(chip, str) else chip
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.defects = defects if defects is not None else DefectSet()
        self.firmware = firmware
        self.strap_window = strap_window
        self.station = station or Station(net_address)  # a station given decides the address
        self.net_address = self.station.address
        self.name = name or (self.state_dir.name if self.state_dir else f"{self.chip.name}-ram")
        self.url: str | None = None
        self._requested_mac = mac
        self.flash = NorFlash(self.state_dir / "flash.bin" if self.state_dir else None)
        self.efuses: Efuses | None = None
        self.uart = Uart()
        self.lines = ResetLines(self._en_fell, self._en_rose)
        self.triggers = PowerTriggers()
        self._lock = threading.RLock()
        self._powered = False
        self._cpu: _Cpu | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def open(self, power: bool = True) -> VirtualBoard:
        """Load flash and eFuses from the state dir and (by default) switch power on."""
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        self.efuses = Efuses.load_or_create(self.chip, self.state_dir, self._requested_mac)
        self.flash.open()
        if power:
            self.power_on()
        return self

    def close(self) -> None:
        """Power off, flush the flash and release files. Idempotent."""
        self.power_off()
        self.flash.close()

    def __enter__(self) -> VirtualBoard:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def require_efuses(self) -> Efuses:
        """The eFuses, loaded by ``open()``; ``RuntimeError`` if the board was never opened."""
        if self.efuses is None:
            raise RuntimeError(f"board {self.name} is not open: call open() first")
        return self.efuses

    @property
    def mac(self) -> bytes:
        return self.require_efuses().mac

    # -- host-facing hardware ----------------------------------------------------------------------------
    def set_lines(self, dtr: bool | None = None, rts: bool | None = None) -> None:
        """DTR/RTS from the USB-UART bridge (True = asserted)."""
        self.lines.set(dtr=dtr, rts=rts)

    def host_write(self, data: bytes) -> None:
        """Bytes the host sent on the serial line."""
        self.uart.receive(data)

    # -- power and reset ---------------------------------------------------------------------------------
    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def mode(self) -> str:
        """off | reset | download | stub | app | idle."""
        cpu = self._cpu
        if not self._powered:
            return "off"
        if cpu is None:
            return "reset"
        loader = cpu.loader
        if cpu.mode == "download" and loader is not None and loader.stub:
            return "stub"
        return cpu.mode

    def power_on(self) -> None:
        """Apply power: a POWERON reset if EN is not held low."""
        with self._lock:
            if self._powered:
                return
            self._powered = True
            if self.lines.en_high:
                self._start_cpu(ResetCause.POWERON)

    def power_off(self) -> None:
        """Remove power: the CPU stops, UART input is ignored until power returns."""
        with self._lock:
            self._powered = False
            cpu = self._detach_cpu()
        self._join(cpu)
        self.flash.flush()

    def press_reset(self) -> None:
        """Pulse EN low and high again (the reset button), keeping the line states."""
        with self._lock:
            cpu = self._detach_cpu()
        self._join(cpu)
        with self._lock:
            if self._powered and self.lines.en_high:
                self._start_cpu(ResetCause.EXT_EN)

    def cut_power(self, cpu: _Cpu, trigger: CutTrigger) -> None:
        """Called on the CPU thread when an armed trigger fires: power off, and on again if asked."""
        log.info("board %s: power cut at %s", self.name, trigger.event)
        with self._lock:
            if self._cpu is cpu:
                self._powered = False
                self._detach_cpu()
            if trigger.restore:
                self._powered = True
                if self.lines.en_high:
                    self._start_cpu(ResetCause.POWERON, prev=cpu)

    def _en_fell(self) -> None:
        with self._lock:
            cpu = self._detach_cpu()
        self._join(cpu)

    def _en_rose(self) -> None:
        with self._lock:
            if self._powered and self._cpu is None:
                self._start_cpu(ResetCause.EXT_EN)

    def _start_cpu(self, cause: ResetCause, prev: _Cpu | None = None) -> None:
        cpu = _Cpu(self, cause, prev)
        self._cpu = cpu
        cpu.thread.start()

    def _detach_cpu(self) -> _Cpu | None:
        cpu, self._cpu = self._cpu, None
        if cpu is not None:
            cpu.halt()
            self.uart.enable_rx(False)
        return cpu

    def _join(self, cpu: _Cpu | None) -> None:
        if cpu is None or cpu.thread is threading.current_thread() or not cpu.thread.is_alive():
            return
        cpu.thread.join(JOIN_TIMEOUT)
        if cpu.thread.is_alive():
            log.error(
                "board %s: CPU thread did not stop within %.0f s (firmware not waiting on the runtime?)",
                self.name,
                JOIN_TIMEOUT,
            )

    # -- introspection -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """JSON-ready state for the control socket and board.json."""
        return {
            "name": self.name,
            "chip": self.chip.name,
            "mac": format_mac(self.mac) if self.efuses else None,
            "url": self.url,
            "address": self.net_address,
            "power": self._powered,
            "mode": self.mode,
            "lines": {"dtr": self.lines.dtr, "rts": self.lines.rts},
            "host_connected": self.uart.attached,
            "defects": list(self.defects),
            "armed": trigger_dicts(self.triggers.armed),
            "cuts": list(self.triggers.cuts),
            "state_dir": str(self.state_dir) if self.state_dir else None,
        }
