"""Drive a LoaderSession in-process with scripted host input (no threads, no sockets)."""

from __future__ import annotations

import struct
from collections import deque

from hil.sim import slip
from hil.sim.chips import chip_spec
from hil.sim.defects import DefectSet
from hil.sim.efuse import Efuses
from hil.sim.flash import NorFlash
from hil.sim.loader import LoaderSession
from hil.sim.loader.protocol import checksum
from hil.sim.runtime import Halted


def request(op: int, data: bytes = b"", chk: int = 0) -> bytes:
    return struct.pack("<BBHI", 0, op, len(data), chk) + data


def block(op: int, seq: int, body: bytes, chk: int | None = None) -> bytes:
    return request(op, struct.pack("<IIII", len(body), seq, 0, 0) + body, checksum(body) if chk is None else chk)


class ScriptedIO:
    """Host side: chunks to deliver, everything the chip sent."""

    def __init__(self) -> None:
        self.inbox: deque[bytes] = deque()
        self.out = bytearray()
        self.baudrate = 115200

    def read(self) -> bytes:
        if not self.inbox:
            raise Halted("script exhausted")
        return self.inbox.popleft()

    def write(self, data: bytes) -> None:
        self.out += data

    def set_baudrate(self, baud: int) -> None:
        self.baudrate = baud


class LoaderRig:
    """A loader session on a RAM flash; ``send(*frames)`` runs it until input is exhausted."""

    def __init__(self, chip: str = "esp32", defects: tuple[str, ...] = ()) -> None:
        spec = chip_spec(chip)
        self.flash = NorFlash(None).open()
        self.efuses = Efuses(spec, b"\x24\x0a\xc4\x01\x02\x03")
        self.io = ScriptedIO()
        self.session = LoaderSession(spec, self.flash, self.efuses, DefectSet(defects), self.io)
        self._decoder = slip.SlipDecoder()
        self.left = None

    def send_raw(self, *chunks: bytes) -> list[bytes]:
        self.io.inbox.extend(chunks)
        self.io.out.clear()
        try:
            self.left = self.session.run()
        except Halted:
            pass
        return self._decoder.feed(bytes(self.io.out))

    def send(self, *frames: bytes) -> list[bytes]:
        return self.send_raw(*(slip.encode(f) for f in frames))

    def start_stub(self) -> None:
        out = self.send(request(0x06, struct.pack("<II", 0, 0x4009_0000)))
        assert out[-1] == b"OHAI"


def parse(resp: bytes) -> tuple[int, int, int, bytes]:
    """(op, value, len, data+status) of a response frame."""
    direction, op, length, value = struct.unpack_from("<BBHI", resp)
    assert direction == 1
    assert length == len(resp) - 8
    return op, value, length, resp[8:]
