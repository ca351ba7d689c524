"""The SPI0/1 "user command" registers esptool drives to talk to the flash chip directly.

esptool sets up USR/USR1/USR2/ADDR/W0.., writes bit 18 (USR) to SPI_CMD and polls it. On that write
the controller clocks the command to the flash model and puts the reply in W0, then clears the bit.
The flash chip modelled is a Winbond W25Q32 (JEDEC ``EF 40 16``, 4 MiB) with a real SFDP header.
"""

from __future__ import annotations

from dataclasses import dataclass

SPI_CMD_USR = 1 << 18
SPI_USR_COMMAND = 1 << 31
SPI_USR_ADDR = 1 << 30
SPI_USR_MISO = 1 << 28
SPI_USR1_ADDR_LEN_SHIFT = 26

# W25Q32JV SFDP: signature, header, first parameter headers; unread cells read 0xFF.
SFDP_TABLE = bytes.fromhex(
    "53464450"
    "060101ff"  # "SFDP", rev 1.6, 2 headers, unused
    "00060110"
    "800000ff"  # JEDEC basic flash parameter table at 0x80, 16 dwords
    "84000102"
    "d00000ff"  # 4-byte address instruction table at 0xD0
)


@dataclass(frozen=True)
class SpiLayout:
    """Register offsets of one chip's SPI flash controller (esptool's SPI_*_OFFS)."""

    base: int
    usr: int
    usr1: int
    usr2: int
    mosi_dlen: int
    miso_dlen: int
    w0: int

    def contains(self, addr: int) -> bool:
        """True if ``addr`` is one of this controller's registers."""
        return self.base <= addr < self.base + self.w0 + 0x40


LAYOUTS = {
    "esp32": SpiLayout(0x3FF42000, 0x1C, 0x20, 0x24, 0x28, 0x2C, 0x80),
    "esp32c6": SpiLayout(0x60003000, 0x18, 0x1C, 0x20, 0x24, 0x28, 0x58),
}


@dataclass(frozen=True)
class FlashIdentity:
    """What the flash chip answers to identification commands."""

    manufacturer: int = 0xEF
    memory_type: int = 0x40
    capacity_code: int = 0x16  # 2^22 bytes = 4 MiB

    def rdid(self) -> bytes:
        return bytes((self.manufacturer, self.memory_type, self.capacity_code))


class SpiController:
    """Register file of the flash SPI controller; executes user commands on a write to SPI_CMD."""

    def __init__(self, layout: SpiLayout, identity: FlashIdentity = FlashIdentity()) -> None:
        self.layout = layout
        self.identity = identity
        self._regs: dict[int, int] = {}
        self.commands: list[int] = []  # every command byte clocked out, for tests

    def read(self, addr: int) -> int:
        """Current value of the register at ``addr``."""
        return self._regs.get(addr - self.layout.base, 0)

    def write(self, addr: int, value: int) -> None:
        """Store a register; writing USR into SPI_CMD runs the configured command."""
        offset = addr - self.layout.base
        self._regs[offset] = value & 0xFFFFFFFF
        if offset == 0 and value & SPI_CMD_USR:
            self._execute()
            self._regs[0] = value & ~SPI_CMD_USR & 0xFFFFFFFF

    def _execute(self) -> None:
        lay, regs = self.layout, self._regs
        usr = regs.get(lay.usr, 0)
        command = regs.get(lay.usr2, 0) & 0xFF
        self.commands.append(command)
        address = 0
        if usr & SPI_USR_ADDR:
            addr_bits = ((regs.get(lay.usr1, 0) >> SPI_USR1_ADDR_LEN_SHIFT) & 0x3F) + 1
            address = regs.get(0x04, 0) >> (32 - addr_bits)  # MSB-aligned in SPI_ADDR
        if not usr & SPI_USR_MISO:
            return  # write-only command (WREN, reset, ...): nothing comes back
        miso_bits = (regs.get(lay.miso_dlen, 0) & 0xFFFFFF) + 1
        reply = self._reply(command, address, (miso_bits + 7) // 8)
        word = int.from_bytes(reply[:4].ljust(4, b"\x00"), "little")
        if miso_bits < 32:
            word &= (1 << miso_bits) - 1
        regs[lay.w0] = word

    def _reply(self, command: int, address: int, nbytes: int) -> bytes:
        if command == 0x9F:  # RDID
            return self.identity.rdid()
        if command == 0x5A:  # RDSFDP
            return SFDP_TABLE[address : address + nbytes].ljust(nbytes, b"\xff")
        if command in (0x05, 0x35, 0x15):  # status registers: idle, no protection
            return b"\x00" * nbytes
        return b"\xff" * nbytes  # nothing drives MISO
