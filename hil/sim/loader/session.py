"""The download-mode main loop: SLIP frames in, responses out, stub start, flash streaming."""

from __future__ import annotations

import hashlib
import logging
import struct
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from hil.sim import slip
from hil.sim.chips import ChipSpec
from hil.sim.defects import DefectSet
from hil.sim.efuse import Efuses
from hil.sim.flash import NorFlash
from hil.sim.loader import protocol as p
from hil.sim.loader.commands import After, LoaderCommands
from hil.sim.loader.registers import ChipRegisters

log = logging.getLogger(__name__)

DOWNLOAD_STRAP = 0x03  # GPIO_STRAP value with IO0 low (boot:0x3)


class LoaderIO(Protocol):
    """The UART as the loader sees it. ``read`` raises ``Halted`` when the CPU is stopped."""

    def read(self) -> bytes:
        """Block until at least one byte arrived; return what is buffered."""

    def write(self, data: bytes) -> None:
        """Transmit ``data`` (lost if no host is listening)."""

    @property
    def baudrate(self) -> int:
        """Current line rate (the ROM auto-bauds to the host's)."""

    def set_baudrate(self, baud: int) -> None:
        """CHANGE_BAUDRATE took effect."""


@dataclass(frozen=True)
class LeaveLoader:
    """The host asked the chip to leave download mode: ``reboot`` (a reset) or run the app."""

    reboot: bool


class LoaderSession:
    """One stay in download mode, from the ``waiting for download`` banner to a reset or run."""

    def __init__(self, chip: ChipSpec, flash: NorFlash, efuses: Efuses, defects: DefectSet, io: LoaderIO) -> None:
        self.io = io
        self.registers = ChipRegisters(chip.name, efuses, lambda: io.baudrate, DOWNLOAD_STRAP)
        self.commands = LoaderCommands(chip, flash, efuses, defects, self.registers, lambda: io.baudrate)
        self.flash = flash
        self._decoder = slip.SlipDecoder()
        self._frames: deque[bytes] = deque()

    @property
    def stub(self) -> bool:
        """True once the flasher stub is 'running' (after MEM_END with an entry point)."""
        return self.commands.stub

    def _next_frame(self) -> bytes:
        while not self._frames:
            self._frames.extend(self._decoder.feed(self.io.read()))
        return self._frames.popleft()

    def _send(self, body: bytes) -> None:
        self.io.write(slip.encode(body))

    def run(self) -> LeaveLoader:
        """Serve commands until the host makes the chip leave; ``Halted`` propagates."""
        while True:
            frame = self._next_frame()
            body, after = self.commands.handle(frame)
            if after is None:
                self._send(body)
                continue
            if after.kind == "leave":
                self._send(body)
                return LeaveLoader(reboot=after.args[0])
            self._send(body)
            self._do(after, body)

    def _do(self, after: After, body: bytes) -> None:
        if after.kind == "repeat":  # the ROM answers SYNC eight times; esptool reads them all
            for _ in range(after.args[0]):
                self._send(body)
        elif after.kind == "ohai":
            self.commands.stub = True
            self._send(p.OHAI)
        elif after.kind == "baud":
            self.io.set_baudrate(after.args[0])
        elif after.kind == "stream":
            self._stream(*after.args)

    def _stream(self, offset: int, length: int, block: int, inflight: int) -> None:
        """Stub READ_FLASH: send blocks, at most ``inflight`` unacknowledged, then the MD5."""
        digest = hashlib.md5()
        sent = acked = 0
        while acked < length:
            while sent < length and sent - acked < inflight * block:
                chunk = self.flash.read(offset + sent, min(block, length - sent))
                digest.update(chunk)
                self._send(chunk)
                sent += len(chunk)
            ack = self._next_frame()
            if len(ack) != 4:
                log.warning("READ_FLASH: expected a 4-byte ack, got %d bytes; ignored", len(ack))
                continue
            (total,) = struct.unpack("<I", ack)
            acked = max(acked, min(total, sent))
        self._send(digest.digest())
