"""The virtual board's SPI NOR flash: 4 MiB, writes AND into the cells, erase sets 0xFF per 4 KiB sector.

Persisted as ``<state-dir>/flash.bin`` through ``mmap`` so a restarted ``hil sim`` is the same board.
The flash is pure storage: power-cut checkpoints belong to the firmware code that calls it.
"""

from __future__ import annotations

import mmap
import os
import threading
from pathlib import Path
from typing import BinaryIO

from hil.images.layout import FLASH_SIZE, SECTOR_SIZE


class NorFlash:
    """A NOR flash chip. ``open()`` before use, ``close()`` after (or use it as a context manager)."""

    def __init__(self, path: Path | None, size: int = FLASH_SIZE) -> None:
        if size <= 0 or size % SECTOR_SIZE:
            raise ValueError(f"flash size {size:#x} must be a positive multiple of {SECTOR_SIZE:#x}")
        self.path = Path(path) if path is not None else None
        self.size = size
        self._lock = threading.Lock()
        self._mem: mmap.mmap | bytearray | None = None
        self._file: BinaryIO | None = None
        # counters for tests and benchmarks
        self.bytes_written = 0
        self.bytes_erased = 0
        self.write_ops = 0
        self.erase_ops = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> NorFlash:
        """Map the backing file (created all-0xFF, or grown with 0xFF) or allocate RAM if no path."""
        if self._mem is not None:
            return self
        if self.path is None:
            self._mem = bytearray(b"\xff" * self.size)
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        backing = os.fdopen(fd, "r+b")
        self._file = backing
        current = os.fstat(fd).st_size
        if current > self.size:
            backing.close()
            self._file = None
            raise ValueError(
                f"flash image {self.path} is {current:#x} bytes, larger than the "
                f"{self.size:#x}-byte flash: delete it or use another --state-dir"
            )
        if current < self.size:  # new or short image: the missing cells are erased
            backing.seek(current)
            backing.write(b"\xff" * (self.size - current))
            backing.flush()
        self._mem = mmap.mmap(fd, self.size)
        return self

    def close(self) -> None:
        """Flush to disk and unmap. Idempotent."""
        with self._lock:
            if isinstance(self._mem, mmap.mmap):
                self._mem.flush()
                self._mem.close()
            self._mem = None
            if self._file is not None:
                self._file.close()
                self._file = None

    def flush(self) -> None:
        """Write dirty pages of the mapping to the backing file."""
        with self._lock:
            if isinstance(self._mem, mmap.mmap):
                self._mem.flush()

    def __enter__(self) -> NorFlash:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- NOR operations --------------------------------------------------------------------------
    def _check(self, offset: int, length: int, what: str) -> mmap.mmap | bytearray:
        if self._mem is None:
            raise RuntimeError(f"flash {self.path or '<ram>'} is not open: call open() first")
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError(f"{what} {offset:#x}+{length:#x} is outside the {self.size:#x}-byte flash")
        return self._mem

    def read(self, offset: int, length: int) -> bytes:
        """Return ``length`` bytes from ``offset``."""
        with self._lock:
            mem = self._check(offset, length, "read")
            return bytes(mem[offset : offset + length])

    def write(self, offset: int, data: bytes) -> None:
        """Program ``data`` at ``offset``: each cell becomes old AND new (bits only go 1 → 0)."""
        n = len(data)
        with self._lock:
            mem = self._check(offset, n, "write")
            if n == 0:
                return
            old = int.from_bytes(mem[offset : offset + n], "little")
            new = old & int.from_bytes(data, "little")
            mem[offset : offset + n] = new.to_bytes(n, "little")
            self.bytes_written += n
            self.write_ops += 1

    def erase(self, offset: int, length: int) -> None:
        """Erase whole 4 KiB sectors to 0xFF; ``ValueError`` if ``offset``/``length`` are unaligned."""
        if offset % SECTOR_SIZE or length % SECTOR_SIZE:
            raise ValueError(f"erase {offset:#x}+{length:#x} is not {SECTOR_SIZE:#x}-sector aligned")
        with self._lock:
            mem = self._check(offset, length, "erase")
            mem[offset : offset + length] = b"\xff" * length
            self.bytes_erased += length
            self.erase_ops += 1

    def erase_all(self) -> None:
        """Chip erase: every cell 0xFF."""
        self.erase(0, self.size)
