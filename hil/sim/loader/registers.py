"""Memory-mapped registers the loader's READ_REG/WRITE_REG reach, per chip.

Only what esptool reads is modelled: the chip-detect magic word, eFuse read registers, the ESP32
date/clock/calibration registers it derives revision and crystal from, and the SPI controller.
Any other address behaves as RAM (reads back what was written, 0 before).
"""

from __future__ import annotations

from collections.abc import Callable

from hil.sim.efuse import Efuses
from hil.sim.loader.spi import LAYOUTS, SpiController

CHIP_DETECT_MAGIC_REG = 0x40001000
XTAL_HZ = 40_000_000

# Fixed ROM/peripheral values per chip.
_FIXED: dict[str, dict[int, int]] = {
    "esp32": {
        CHIP_DETECT_MAGIC_REG: 0x00F01D83,
        0x3FF6607C: 0x80000000 | 0x16042000,  # APB_CTL_DATE: bit 31 = ECO3 (major revision 3)
        0x3FF5F06C: 1024 << 7,  # RTCCALICFG1: with CK8M=100 the ROM estimates 40 MHz
    },
    "esp32c6": {
        CHIP_DETECT_MAGIC_REG: 0x2CE0806F,
    },
}
_UART_CLKDIV = {"esp32": 0x3FF40014, "esp32c6": 0x60000014}
_GPIO_STRAP = {"esp32": 0x3FF44038, "esp32c6": 0x60091038}


class ChipRegisters:
    """The register space of one chip as seen through the serial loader."""

    def __init__(self, chip: str, efuses: Efuses, baudrate: Callable[[], int], strap: int) -> None:
        if chip not in _FIXED:
            raise ValueError(f"no register model for chip {chip!r}; known: {sorted(_FIXED)}")
        self.chip = chip
        self.spi = SpiController(LAYOUTS[chip])
        self._efuses = efuses
        self._baudrate = baudrate
        self._strap = strap
        self._ram: dict[int, int] = {}

    def read(self, addr: int) -> int:
        """Value of the 32-bit word at ``addr``."""
        if self.spi.layout.contains(addr):
            return self.spi.read(addr)
        if addr == _UART_CLKDIV[self.chip]:
            # The ROM auto-bauds: its divider is APB (= crystal in ROM) / line rate.
            return XTAL_HZ // max(1, self._baudrate())
        if addr == _GPIO_STRAP[self.chip]:
            return self._strap
        fixed = _FIXED[self.chip].get(addr)
        if fixed is not None:
            return fixed
        fuse = self._efuses.registers().get(addr)
        if fuse is not None:
            return fuse
        return self._ram.get(addr, 0)

    def write(self, addr: int, value: int, mask: int = 0xFFFFFFFF) -> None:
        """Masked write: bits in ``mask`` take ``value``, the others keep their state."""
        merged = (self.read(addr) & ~mask | value & mask) & 0xFFFFFFFF
        if self.spi.layout.contains(addr):
            self.spi.write(addr, merged)
        else:
            self._ram[addr] = merged
