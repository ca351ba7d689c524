"""A pcap file with exactly one writer.

Two captures writing the same path (two fixtures deriving the file name from the same test id, say)
interleave their records at independent offsets: the file reads as damaged mid-way ("File has
2411760896-byte packet") and only sometimes, because both writers often write the same packets in
the same order. So the file is locked (``flock``, exclusive, per open file: it also catches a second
writer in the same process) before it is truncated, and a second writer gets a :class:`PcapBusy`
naming the path instead of a damaged file. The lock goes with :meth:`PcapFile.close`.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from scapy.packet import Packet
from scapy.utils import PcapWriter

DLT_EN10MB = 1


class PcapBusy(RuntimeError):
    """Another capture is writing this pcap."""


class PcapFile:
    """Thread-safe, unbuffered pcap writer holding an exclusive lock on its file until :meth:`close`.

    :meth:`open` creates the parent folder, takes the lock, truncates and writes the file header, so
    a valid (empty) pcap exists even if nothing is ever written.
    """

    def __init__(self, path: str | Path, *, owner: str) -> None:
        self.path = Path(path)
        self.owner = owner  # who writes it, for the error a second writer gets
        self.count = 0
        self._lock = threading.Lock()
        self._handle: BinaryIO | None = None
        self._writer: PcapWriter | None = None

    def open(self) -> PcapFile:
        """Lock, truncate and start the file; raises :class:`PcapBusy` if another writer holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)  # no O_TRUNC: not before the lock
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PcapBusy(
                f"pcap {self.path} is already being written by another capture, so {self.owner} "
                f"would damage it; give this capture its own file name"
            ) from None
        os.ftruncate(fd, 0)
        self._handle = os.fdopen(fd, "wb", buffering=0)
        self._writer = PcapWriter(self._handle, sync=True, linktype=DLT_EN10MB)
        self._writer.write_header(None)
        return self

    def write(self, frames: Iterable[Packet]) -> None:
        """Append ``frames`` (in order, not interleaved with another thread's)."""
        with self._lock:
            if self._writer is None:
                raise ValueError(f"pcap {self.path} is not open")
            for frame in frames:
                self._writer.write(frame)
                self.count += 1

    def close(self) -> None:
        """Close the file and release its lock; idempotent."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()  # closes the handle, which releases the flock
                self._writer = None
                self._handle = None

    def __enter__(self) -> PcapFile:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
