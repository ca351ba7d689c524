"""The contract between the virtual board (hardware: UART, flash, reset lines, power) and the code
it runs (ROM boot, MCUboot, the device firmware model).

The board owns one "CPU" thread per power/reset cycle and calls the ``Firmware`` it was given (what
``hil sim`` gives it: the boot chain, ``hil.sim.boot.boot_chain``, starting the device app) on it
after a normal (non-download) reset. That code runs until it returns, raises ``Reboot`` (a
software reset: the board resets itself and boots again), or is stopped by the board: every blocking
call on the runtime raises ``Halted`` once EN falls or power goes off, and ``PowerCut`` when an armed
power-cut trigger fires at a ``checkpoint``. Firmware code never sleeps: it waits on the runtime.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hil.sim.chips import ChipSpec
    from hil.sim.defects import DefectSet
    from hil.sim.flash import NorFlash


class ResetCause(enum.Enum):
    """Reset causes with the ROM's code and name as printed in ``rst:0x1 (POWERON_RESET)``."""

    POWERON = (0x1, "POWERON_RESET")
    SW_CPU = (0xC, "SW_CPU_RESET")
    RTCWDT = (0x10, "RTCWDT_RTC_RESET")
    # An alias, not a member of its own: on an ESP32 an EN pin reset is indistinguishable from power-on
    # (the ROM prints ``rst:0x1 (POWERON_RESET)``), so firmware sees ``ResetCause.POWERON`` either way.
    EXT_EN = POWERON

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def label(self) -> str:
        return self.value[1]


class Halted(Exception):
    """The CPU was stopped by the hardware (EN low, power off, board shutting down)."""


class PowerCut(Halted):
    """An armed power-cut trigger fired at a checkpoint; the board is now unpowered."""


class Reboot(Exception):
    """Raised by firmware to restart the chip (``esp_restart()``): the board resets with SW_CPU."""

    def __init__(self, reason: str = "esp_restart") -> None:
        super().__init__(reason)
        self.reason = reason


class Runtime(Protocol):
    """What code running on the virtual chip may use. Implemented by ``hil.sim.board``."""

    chip: ChipSpec
    flash: NorFlash
    defects: DefectSet
    reset_cause: ResetCause

    def write_line(self, text: str) -> None:
        """Print one line on UART0 (``\\r\\n`` appended). Lost when no host is connected."""

    def read_line(self, timeout: float | None = None) -> str | None:
        """Next line received on UART0 (without the newline); ``None`` on timeout or when
        :meth:`notify` woke the reader. Raises ``Halted`` if the CPU is stopped while waiting."""

    def notify(self) -> None:
        """Wake the task blocked in :meth:`read_line` (a FreeRTOS task notification to the console
        task): it returns ``None`` at once, or on its next call if it was not waiting. Any task may call it."""

    def millis(self) -> int:
        """Milliseconds since this reset (the ESP-IDF log timestamp)."""

    def wait(self, timeout: float) -> None:
        """Block for up to ``timeout`` seconds of device time; raises ``Halted`` when stopped.
        For firmware timers only — never for synchronisation."""

    def checkpoint(self, name: str, **fields: object) -> None:
        """Mark a named point (``ota.chunk_written``, ``swap.sector``, ``nvs.write``...). A power-cut
        trigger armed for it cuts power here: raises ``PowerCut``."""


Firmware = Callable[[Runtime], None]
"""What the board runs from flash after a normal reset (the code in flash, as far as the board knows)."""
