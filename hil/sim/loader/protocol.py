"""Wire format of the ESP serial loader: request parsing, response building, op and error codes."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import reduce
from operator import xor

# Command opcodes (esptool's ESP_CMDS).
FLASH_BEGIN = 0x02
FLASH_DATA = 0x03
FLASH_END = 0x04
MEM_BEGIN = 0x05
MEM_END = 0x06
MEM_DATA = 0x07
SYNC = 0x08
WRITE_REG = 0x09
READ_REG = 0x0A
SPI_SET_PARAMS = 0x0B
SPI_ATTACH = 0x0D
READ_FLASH_SLOW = 0x0E
CHANGE_BAUDRATE = 0x0F
FLASH_DEFL_BEGIN = 0x10
FLASH_DEFL_DATA = 0x11
FLASH_DEFL_END = 0x12
SPI_FLASH_MD5 = 0x13
GET_SECURITY_INFO = 0x14
ERASE_FLASH = 0xD0
ERASE_REGION = 0xD1
READ_FLASH = 0xD2
RUN_USER_CODE = 0xD3

SYNC_PAYLOAD = b"\x07\x07\x12\x20" + b"\x55" * 32
CHECKSUM_SEED = 0xEF

# ROM status bytes are (1, error); the stub reports (error, 0) with errors 0xC0..0xC9.
ROM_INVALID_MESSAGE = 0x05
ROM_FAILED = 0x06
ROM_BAD_CHECKSUM = 0x07
ROM_FLASH_WRITE_ERR = 0x08
ROM_FLASH_READ_ERR = 0x09
ROM_READ_LENGTH_ERR = 0x0A
ROM_DEFLATE_ERR = 0x0B

STUB_BAD_DATA_LEN = 0xC0
STUB_BAD_DATA_CHECKSUM = 0xC1
STUB_BAD_BLOCKSIZE = 0xC2
STUB_INVALID_COMMAND = 0xC3
STUB_FAILED_SPI_OP = 0xC4
STUB_NOT_IN_FLASH_MODE = 0xC6
STUB_INFLATE_ERROR = 0xC7
STUB_NOT_ENOUGH_DATA = 0xC8
STUB_TOO_MUCH_DATA = 0xC9

OHAI = b"OHAI"


class CommandError(Exception):
    """A command the loader refuses; carries the ROM error code and the stub error code."""

    def __init__(self, rom_code: int, stub_code: int, detail: str) -> None:
        super().__init__(detail)
        self.rom_code = rom_code
        self.stub_code = stub_code


def invalid(detail: str) -> CommandError:
    """Malformed or unknown request: ROM 0x05 / stub 0xC3 (invalid command) or 0xC0 (bad length)."""
    return CommandError(ROM_INVALID_MESSAGE, STUB_BAD_DATA_LEN, detail)


def checksum(data: bytes) -> int:
    """The ROM's data checksum: 0xEF XOR every byte."""
    if not data:
        return CHECKSUM_SEED
    # XOR of 8-byte words then fold: far faster than a per-byte loop on 16 KiB blocks.
    pad = (-len(data)) % 8
    words = struct.unpack(f"<{(len(data) + pad) // 8}Q", bytes(data) + b"\0" * pad)
    folded = reduce(xor, words, 0)
    folded ^= folded >> 32
    folded ^= folded >> 16
    folded ^= folded >> 8
    return (folded & 0xFF) ^ CHECKSUM_SEED


@dataclass(frozen=True)
class Request:
    """One decoded request frame: ``00, op, u16 len, u32 checksum, data``."""

    op: int
    checksum: int
    data: bytes

    @classmethod
    def parse(cls, frame: bytes) -> Request:
        """Parse a frame; raises ``CommandError`` (invalid message) naming what is wrong."""
        if len(frame) < 8:
            raise invalid(f"frame of {len(frame)} bytes is shorter than the 8-byte header")
        direction, op, length, chk = struct.unpack_from("<BBHI", frame)
        if direction != 0:
            raise invalid(f"direction byte {direction:#04x} is not a request (0x00)")
        data = frame[8:]
        if len(data) != length:
            raise invalid(f"op {op:#04x}: length field {length} but {len(data)} data bytes")
        return cls(op, chk, bytes(data))

    def words(self, count: int, allow_more: tuple[int, ...] = ()) -> tuple[int, ...]:
        """Unpack the payload as exactly ``count`` (or one of ``allow_more``) u32 words."""
        n = len(self.data)
        if n % 4 or (n // 4 != count and n // 4 not in allow_more):
            raise invalid(f"op {self.op:#04x}: payload of {n} bytes, expected {count * 4}")
        return struct.unpack(f"<{n // 4}I", self.data)

    def block(self) -> tuple[int, bytes]:
        """Split a data command ``(u32 len, u32 seq, 0, 0, data)``; checks length and checksum."""
        if len(self.data) < 16:
            raise invalid(f"op {self.op:#04x}: data command shorter than its 16-byte header")
        size, seq = struct.unpack_from("<II", self.data)
        body = self.data[16:]
        if size != len(body):
            raise invalid(f"op {self.op:#04x}: block header says {size} bytes, got {len(body)}")
        if checksum(body) != self.checksum & 0xFF:
            raise CommandError(ROM_BAD_CHECKSUM, STUB_BAD_DATA_CHECKSUM, f"op {self.op:#04x} seq {seq}: bad checksum")
        return seq, body


def response(op: int, value: int = 0, data: bytes = b"", status: bytes = b"") -> bytes:
    """Build a response frame body: ``01, op, u16 len, u32 value, data, status``."""
    body = bytes(data) + bytes(status)
    return struct.pack("<BBHI", 1, op & 0xFF, len(body), value & 0xFFFFFFFF) + body
