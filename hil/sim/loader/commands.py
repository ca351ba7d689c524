"""Command handling of the ROM loader and of the flasher stub (one class, two dialects).

Each handler takes a parsed ``Request`` and returns ``(value, data)`` for the response, or raises
``CommandError``. Effects that must happen after the response is on the wire (start the stub, change
baud rate, stream flash, leave the loader) are returned as an ``After`` action.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from hil.images.layout import SECTOR_SIZE
from hil.sim.chips import ChipSpec
from hil.sim.defects import DefectSet
from hil.sim.efuse import Efuses
from hil.sim.flash import NorFlash
from hil.sim.loader import protocol as p
from hil.sim.loader.registers import ChipRegisters

ROM_SYNC_VALUE = 0x55552007  # what a real ESP32 ROM puts in the SYNC reply's value field


@dataclass(frozen=True)
class After:
    """Something to do once the response was sent."""

    kind: str  # "repeat" | "ohai" | "baud" | "stream" | "leave"
    args: tuple = ()


@dataclass
class _Download:
    """State of a FLASH_BEGIN / FLASH_DEFL_BEGIN / MEM_BEGIN in progress."""

    offset: int
    size: int
    blocks: int
    blocksize: int
    next_seq: int = 0
    written: int = 0
    inflater: zlib._Decompress | None = None


_Result = tuple[int, bytes, After | None]  # a handler's (value, data, action after the response)


def _sector_span(offset: int, size: int) -> tuple[int, int]:
    start = offset - offset % SECTOR_SIZE
    end = -(-(offset + size) // SECTOR_SIZE) * SECTOR_SIZE
    return start, end - start


class LoaderCommands:
    """The command set; ``stub`` switches dialect (status bytes, MD5 format, stub-only ops)."""

    def __init__(
        self,
        chip: ChipSpec,
        flash: NorFlash,
        efuses: Efuses,
        defects: DefectSet,
        registers: ChipRegisters,
        current_baud: Callable[[], int],
    ) -> None:
        self.chip = chip
        self.flash = flash
        self.efuses = efuses
        self.defects = defects
        self.registers = registers
        self._current_baud = current_baud
        self.stub = False
        self._flash_ops_at_start = flash.write_ops + flash.erase_ops
        self._flash_dl: _Download | None = None
        self._mem_dl: _Download | None = None
        self.handled: list[int] = []  # ops answered, for tests
        self._table: dict[int, tuple[Callable[[p.Request], _Result], str]] = {
            p.SYNC: (self._sync, "both"),
            p.READ_REG: (self._read_reg, "both"),
            p.WRITE_REG: (self._write_reg, "both"),
            p.MEM_BEGIN: (self._mem_begin, "both"),
            p.MEM_DATA: (self._mem_data, "both"),
            p.MEM_END: (self._mem_end, "both"),
            p.SPI_ATTACH: (self._spi_attach, "both"),
            p.SPI_SET_PARAMS: (self._spi_set_params, "both"),
            p.FLASH_BEGIN: (self._flash_begin, "both"),
            p.FLASH_DATA: (self._flash_data, "both"),
            p.FLASH_END: (self._flash_end, "both"),
            p.FLASH_DEFL_BEGIN: (self._flash_begin, "both"),
            p.FLASH_DEFL_DATA: (self._flash_defl_data, "both"),
            p.FLASH_DEFL_END: (self._flash_end, "both"),
            p.SPI_FLASH_MD5: (self._md5, "both"),
            p.CHANGE_BAUDRATE: (self._change_baud, "both"),
            p.GET_SECURITY_INFO: (self._security_info, "both"),
            p.READ_FLASH_SLOW: (self._read_flash_slow, "rom"),
            p.ERASE_FLASH: (self._erase_flash, "stub"),
            p.ERASE_REGION: (self._erase_region, "stub"),
            p.READ_FLASH: (self._read_flash, "stub"),
        }

    # -- framing of results ------------------------------------------------------------------------
    def status_ok(self) -> bytes:
        return b"\x00\x00" if self.stub else b"\x00\x00\x00\x00"

    def status_error(self, err: p.CommandError) -> bytes:
        return bytes((err.stub_code, 0)) if self.stub else bytes((1, err.rom_code, 0, 0))

    def handle(self, frame: bytes) -> tuple[bytes, After | None]:
        """Answer one request frame; returns the response body (unframed) and an optional action."""
        op = frame[1] if len(frame) > 1 else 0
        try:
            req = p.Request.parse(frame)
            entry = self._table.get(req.op)
            if entry is None or entry[1] == ("rom" if self.stub else "stub"):
                raise p.CommandError(
                    p.ROM_INVALID_MESSAGE,
                    p.STUB_INVALID_COMMAND,
                    f"op {req.op:#04x} is not supported by the {'stub' if self.stub else 'ROM'} loader",
                )
            value, data, after = entry[0](req)
        except p.CommandError as err:
            return p.response(op, 0, b"", self.status_error(err)), None
        self.handled.append(req.op)
        return p.response(op, value, data, self.status_ok()), after

    # -- connection ----------------------------------------------------------------------------------
    def _sync(self, req: p.Request) -> _Result:
        if req.data != p.SYNC_PAYLOAD:
            raise p.invalid("SYNC payload is not 07 07 12 20 + 32 x 55")
        return (0 if self.stub else ROM_SYNC_VALUE), b"", After("repeat", (7,))

    def _read_reg(self, req: p.Request) -> _Result:
        (addr,) = req.words(1)
        return self.registers.read(addr), b"", None

    def _write_reg(self, req: p.Request) -> _Result:
        if not req.data or len(req.data) % 16:
            raise p.invalid(f"WRITE_REG payload of {len(req.data)} bytes is not a multiple of 16")
        for addr, value, mask, _delay in struct.iter_unpack("<IIII", req.data):
            self.registers.write(addr, value, mask)
        return 0, b"", None

    def _security_info(self, req: p.Request) -> _Result:
        req.words(0)
        if self.chip.name == "esp32":  # the ESP32 ROM predates this command
            raise p.CommandError(
                p.ROM_INVALID_MESSAGE, p.STUB_INVALID_COMMAND, "GET_SECURITY_INFO is not implemented on ESP32"
            )
        info = struct.pack(
            "<IB7BII", self.efuses.security_flags(), self.efuses.crypt_cnt(), *([0] * 7), self.chip.image_chip_id, 0
        )
        return 0, info, None

    def _change_baud(self, req: p.Request) -> _Result:
        new, _old = req.words(2)
        if not 300 <= new <= 5_000_000:
            raise p.CommandError(p.ROM_FAILED, p.STUB_BAD_DATA_LEN, f"baud rate {new} out of range")
        return 0, b"", After("baud", (new,))

    def _spi_attach(self, req: p.Request) -> _Result:
        req.words(1, allow_more=(2,))
        return 0, b"", None

    def _spi_set_params(self, req: p.Request) -> _Result:
        _fl_id, total, _block, sector, page, _mask = req.words(6)
        if total > self.flash.size or sector != SECTOR_SIZE or page != 256:
            raise p.CommandError(
                p.ROM_FAILED,
                p.STUB_BAD_DATA_LEN,
                f"SPI params size={total:#x} sector={sector:#x} page={page} do not "
                f"match the {self.flash.size:#x}-byte flash",
            )
        return 0, b"", None

    # -- RAM download (the stub upload) -----------------------------------------------------------------
    def _mem_begin(self, req: p.Request) -> _Result:
        size, blocks, blocksize, addr = req.words(4)
        if blocksize == 0 or blocks * blocksize < size:
            raise p.CommandError(p.ROM_FAILED, p.STUB_BAD_BLOCKSIZE, "MEM_BEGIN blocks do not cover size")
        self._mem_dl = _Download(addr, size, blocks, blocksize)
        return 0, b"", None

    def _mem_data(self, req: p.Request) -> _Result:
        dl = self._mem_dl
        if dl is None:
            raise p.CommandError(p.ROM_FAILED, p.STUB_NOT_IN_FLASH_MODE, "MEM_DATA without MEM_BEGIN")
        seq, body = req.block()
        if seq >= dl.blocks or len(body) > dl.blocksize:
            raise p.CommandError(p.ROM_FAILED, p.STUB_TOO_MUCH_DATA, f"MEM_DATA seq {seq} past the end")
        dl.written += len(body)  # RAM contents are not executed: the stub is modelled, not emulated
        return 0, b"", None

    def _mem_end(self, req: p.Request) -> _Result:
        no_entry, entry = req.words(2)
        self._mem_dl = None
        if no_entry or entry == 0:
            return 0, b"", None
        return 0, b"", After("ohai")

    # -- flash writing ------------------------------------------------------------------------------
    def _flash_begin(self, req: p.Request) -> _Result:
        size, blocks, blocksize, offset, *rest = req.words(4, allow_more=(5,))
        if rest and rest[0]:
            raise p.CommandError(
                p.ROM_FAILED, p.STUB_FAILED_SPI_OP, "encrypted flash writes are not supported by the virtual board"
            )
        if blocksize == 0 or offset + size > self.flash.size:
            raise p.CommandError(
                p.ROM_FAILED,
                p.STUB_TOO_MUCH_DATA,
                f"write {offset:#x}+{size:#x} does not fit the {self.flash.size:#x}-byte flash",
            )
        if size:
            self.flash.erase(*_sector_span(offset, size))  # ROM erases up front; the stub as it goes
        inflater = zlib.decompressobj() if req.op == p.FLASH_DEFL_BEGIN else None
        self._flash_dl = _Download(offset, size, blocks, blocksize, inflater=inflater)
        return 0, b"", None

    def _active(self, op: int, compressed: bool) -> _Download:
        dl = self._flash_dl
        if dl is None or (dl.inflater is not None) != compressed:
            raise p.CommandError(
                p.ROM_FAILED,
                p.STUB_NOT_IN_FLASH_MODE,
                f"op {op:#04x} without a matching FLASH_{'DEFL_' if compressed else ''}BEGIN",
            )
        return dl

    def _flash_data(self, req: p.Request) -> _Result:
        dl = self._active(req.op, compressed=False)
        seq, body = req.block()
        if seq >= dl.blocks or len(body) > dl.blocksize:
            raise p.CommandError(
                p.ROM_FLASH_WRITE_ERR,
                p.STUB_TOO_MUCH_DATA,
                f"FLASH_DATA seq {seq} is past the {dl.blocks} blocks announced",
            )
        start = dl.offset + seq * dl.blocksize
        self.flash.write(start, body[: max(0, self.flash.size - start)])
        dl.next_seq = seq + 1
        return 0, b"", None

    def _flash_defl_data(self, req: p.Request) -> _Result:
        dl = self._active(req.op, compressed=True)
        seq, body = req.block()
        if seq == dl.next_seq - 1:
            return 0, b"", None  # a retry of a block we took (the host lost our reply)
        if seq != dl.next_seq:
            raise p.CommandError(
                p.ROM_INVALID_MESSAGE, p.STUB_BAD_DATA_LEN, f"FLASH_DEFL_DATA seq {seq}, expected {dl.next_seq}"
            )
        inflater = dl.inflater
        if inflater is None:  # _active(compressed=True) only returns a download that has one
            raise RuntimeError("FLASH_DEFL download without an inflater")
        try:
            out = inflater.decompress(body)
        except zlib.error as exc:
            raise p.CommandError(p.ROM_DEFLATE_ERR, p.STUB_INFLATE_ERROR, f"inflate failed: {exc}") from None
        if dl.written + len(out) > dl.size:
            raise p.CommandError(
                p.ROM_DEFLATE_ERR,
                p.STUB_TOO_MUCH_DATA,
                f"compressed stream inflates past the announced {dl.size:#x} bytes",
            )
        self.flash.write(dl.offset + dl.written, out)
        dl.written += len(out)
        dl.next_seq = seq + 1
        return 0, b"", None

    def _flash_end(self, req: p.Request) -> _Result:
        (stay,) = req.words(1)
        self._flash_dl = None
        if stay and self.stub:
            return 0, b"", None
        # ROM: 0 = reboot, 1 = run the app from flash; stub: 0 = reboot (back to the ROM)
        return 0, b"", After("leave", (not stay,))

    # -- flash reading / erasing --------------------------------------------------------------------
    def _range(self, offset: int, size: int) -> None:
        if offset + size > self.flash.size:
            raise p.CommandError(
                p.ROM_FLASH_READ_ERR,
                p.STUB_TOO_MUCH_DATA,
                f"{offset:#x}+{size:#x} is past the end of the {self.flash.size:#x}-byte flash",
            )

    def _md5(self, req: p.Request) -> _Result:
        addr, size, _, _ = req.words(4)
        self._range(addr, size)
        digest = hashlib.md5(self.flash.read(addr, size)).digest()
        nothing_written_yet = self.flash.write_ops + self.flash.erase_ops == self._flash_ops_at_start
        if nothing_written_yet and "loader-stale-md5" in self.defects:
            digest = bytes((digest[0] ^ 0x5A,)) + digest[1:]
        return 0, (digest if self.stub else digest.hex().encode()), None

    def _read_flash_slow(self, req: p.Request) -> _Result:
        offset, length = req.words(2)
        if length > 64:
            raise p.CommandError(p.ROM_READ_LENGTH_ERR, p.STUB_BAD_DATA_LEN, f"READ_FLASH_SLOW of {length} > 64 bytes")
        self._range(offset, length)
        chunk = self.flash.read(offset, min(64, self.flash.size - offset))
        return 0, chunk.ljust(64, b"\xff"), None

    def _read_flash(self, req: p.Request) -> _Result:
        offset, length, block, inflight = req.words(4)
        self._range(offset, length)
        if not 0 < block <= 0x4000 or inflight == 0:
            raise p.CommandError(p.ROM_FAILED, p.STUB_BAD_BLOCKSIZE, f"READ_FLASH block {block:#x} inflight {inflight}")
        return 0, b"", After("stream", (offset, length, block, inflight))

    def _erase_flash(self, req: p.Request) -> _Result:
        req.words(0)
        self.flash.erase_all()
        return 0, b"", None

    def _erase_region(self, req: p.Request) -> _Result:
        offset, size = req.words(2)
        if offset % SECTOR_SIZE or size % SECTOR_SIZE:
            raise p.CommandError(p.ROM_FAILED, p.STUB_BAD_DATA_LEN, f"erase {offset:#x}+{size:#x} is not 4 KiB aligned")
        self._range(offset, size)
        self.flash.erase(offset, size)
        return 0, b"", None
