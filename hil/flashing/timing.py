"""How long flashing takes on the wire and how long the harness lets it take: one small model.

esptool bounds each command it sends by ``timeout_per_mb`` (its ``ERASE_WRITE_TIMEOUT_PER_MB`` = 40 s
per MB for a write block, ``MD5_TIMEOUT_PER_MB`` = 8 s, ``ERASE_REGION_TIMEOUT_PER_MB`` = 40 s, none
shorter than its 3 s ``DEFAULT_TIMEOUT``); the harness bounds a whole esptool call, so its bound is
the bytes' time on the wire at the link's baud rate (10 bits a byte on the UART: start, 8 data,
stop) plus esptool's own per-MB allowance for the flash work, plus a fixed margin for the round
trips. ``expected`` is what a real board typically takes: wire time plus a typical SPI NOR erase and
program time (the bench prints both beside the virtual board's measured time).

The figures are esptool's defaults, copied as numbers (esptool reads them from its configuration,
which the harness refuses): ``selftest/flashing/test_flash_timing.py`` checks they still match.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

ROM_BAUD = 115200  # the ROM loader's rate before esptool's change_baud
BITS_PER_BYTE = 10  # 8N1 on the UART
MB = 1_000_000  # esptool's timeout_per_mb divides by 1e6
DEFAULT_TIMEOUT = 3.0  # esptool: no command timeout is shorter
ERASE_WRITE_TIMEOUT_PER_MB = 40.0
MD5_TIMEOUT_PER_MB = 8.0
ERASE_REGION_TIMEOUT_PER_MB = 40.0
MARGIN = 20.0  # s: connect-free round trips, a loaded host, the stub's flash_begin erase
# A typical 4 MB SPI NOR (W25Q32JV datasheet, typical): 64 KiB block erase 150 ms, 256-byte page
# program 0.5 ms: 2.4 + 2.0 s per MiB, counted without overlap with the transfer.
TYPICAL_ERASE_PROGRAM_PER_MIB = 16 * 0.150 + 4096 * 0.0005


def timeout_per_mb(seconds_per_mb: float, size: int) -> float:
    """esptool's ``timeout_per_mb``: the per-MB figure scaled to ``size``, at least DEFAULT_TIMEOUT."""
    return max(DEFAULT_TIMEOUT, seconds_per_mb * (size / MB))


def compressed_size(data: bytes) -> int:
    """An upper bound of what esptool sends for ``data`` (it deflates at level 9; level 1 is cheaper
    and never smaller, so the bound holds)."""
    return len(zlib.compress(data, 1))


@dataclass(frozen=True)
class FlashTiming:
    """Flash time figures at ``baud`` (the link's rate: the ROM's, or the flash baud)."""

    baud: int = ROM_BAUD
    margin: float = MARGIN

    def wire(self, nbytes: int) -> float:
        """Seconds ``nbytes`` take on the UART at this baud rate."""
        return nbytes * BITS_PER_BYTE / self.baud

    def write_bound(self, size: int, sent: int | None = None) -> float:
        """Bound for writing ``size`` bytes (``sent`` compressed bytes on the wire; default: ``size``)
        and esptool's MD5 check of them: wire time + esptool's erase/write and MD5 allowances + margin."""
        on_wire = size if sent is None else sent
        return (
            self.wire(on_wire)
            + timeout_per_mb(ERASE_WRITE_TIMEOUT_PER_MB, size)
            + timeout_per_mb(MD5_TIMEOUT_PER_MB, size)
            + self.margin
        )

    def read_bound(self, size: int) -> float:
        """Bound for reading ``size`` bytes back (uncompressed on the wire)."""
        return self.wire(size) + self.margin

    def md5_bound(self, size: int) -> float:
        """Bound for the stub's MD5 of ``size`` bytes of flash."""
        return timeout_per_mb(MD5_TIMEOUT_PER_MB, size) + self.margin

    def erase_bound(self, size: int) -> float:
        """Bound for erasing ``size`` bytes."""
        return timeout_per_mb(ERASE_REGION_TIMEOUT_PER_MB, size) + self.margin

    def expected(self, size: int, sent: int | None = None) -> float:
        """Typical seconds a real board takes to write ``size`` bytes (``sent`` on the wire)."""
        on_wire = size if sent is None else sent
        return self.wire(on_wire) + TYPICAL_ERASE_PROGRAM_PER_MIB * size / (1024 * 1024)

    def describe(self, size: int, sent: int | None = None) -> str:
        """One line: the wire time, the typical time and the bound for this write."""
        on_wire = size if sent is None else sent
        return (
            f"{size} B ({on_wire} B on the wire) at {self.baud} baud: wire {self.wire(on_wire):.1f} s, "
            f"typical {self.expected(size, sent):.1f} s, bound {self.write_bound(size, sent):.0f} s"
        )
