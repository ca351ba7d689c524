"""Fakes and image builders for the boot chain self-tests: a NOR flash and a runtime with the
board's API, hand-made ESP32 images, images signed with the imgtool CLI."""

from __future__ import annotations

import hashlib
import queue
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hil.images.app_desc import AppDesc
from hil.images.bootloader_key import pack_key_block
from hil.images.layout import SECTOR_SIZE, layout_for
from hil.sim.chips import chip_spec
from hil.sim.defects import DefectSet
from hil.sim.runtime import Halted, PowerCut, ResetCause

SLOT_SIZE = layout_for("esp32").slot_size


class FakeFlash:
    """NOR flash with the board's NorFlash API: AND writes, 4 KiB erases to 0xFF."""

    def __init__(self, size: int = 4 * 1024 * 1024) -> None:
        self.size = size
        self._cells = bytearray(b"\xff" * size)

    def read(self, offset: int, length: int) -> bytes:
        assert 0 <= offset and offset + length <= self.size, (offset, length)
        return bytes(self._cells[offset:offset + length])

    def write(self, offset: int, data: bytes) -> None:
        assert 0 <= offset and offset + len(data) <= self.size, (offset, len(data))
        chunk = self._cells[offset:offset + len(data)]
        self._cells[offset:offset + len(data)] = (
            int.from_bytes(chunk, "little") & int.from_bytes(data, "little")
        ).to_bytes(len(data), "little")

    def erase(self, offset: int, length: int) -> None:
        assert offset % SECTOR_SIZE == 0 and length % SECTOR_SIZE == 0, (offset, length)
        self._cells[offset:offset + length] = b"\xff" * length

    def erase_all(self) -> None:
        self._cells[:] = b"\xff" * self.size


class FakeRuntime:
    """Runtime for one boot: records lines and checkpoints, feeds scripted console input.

    Blocking calls end the run with ``Halted`` once the script is exhausted (``read_line``) or
    after ``max_waits`` waits, so endless firmware loops end deterministically. A power cut can be
    armed at the n-th checkpoint (0-based) of a given name.
    """

    def __init__(self, flash: FakeFlash, defects: tuple[str, ...] = (), chip: str = "esp32",
                 inputs: tuple[str, ...] = (), max_waits: int = 3) -> None:
        self.chip = chip_spec(chip)
        self.flash = flash
        self.defects = DefectSet(defects)
        self.reset_cause = ResetCause.POWERON
        self.lines: list[str] = []
        self.checkpoints: list[tuple[str, dict]] = []
        self._inputs: queue.Queue[str] = queue.Queue()
        for line in inputs:
            self._inputs.put(line)
        self._max_waits = max_waits
        self.waits = 0
        self._cut: tuple[str, int] | None = None
        self._ms = 0

    def arm_power_cut(self, name: str, index: int) -> None:
        self._cut = (name, index)

    def write_line(self, text: str) -> None:
        self.lines.append(text)

    def read_line(self, timeout: float | None = None) -> str | None:
        try:
            return self._inputs.get_nowait()
        except queue.Empty:
            raise Halted("script exhausted") from None

    def millis(self) -> int:
        self._ms += 3
        return self._ms

    def notify(self) -> None:
        pass  # read_line never blocks here: there is no waiting reader to wake

    def wait(self, timeout: float) -> None:
        self.waits += 1
        if self.waits >= self._max_waits:
            raise Halted("test stops the chip")

    def checkpoint(self, name: str, **fields: object) -> None:
        seen = sum(1 for n, _ in self.checkpoints if n == name)
        self.checkpoints.append((name, fields))
        if self._cut and self._cut == (name, seen):
            raise PowerCut(f"power cut at {name} #{seen}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def make_esp_image(segments: list[tuple[int, bytes]], entry: int, chip_id: int = 0) -> bytes:
    """An ESP32 image: header, segments, checksum, appended SHA-256 (image-formats.md)."""
    head = struct.pack("<BBBBI", 0xE9, len(segments), 2, 0x20, entry)
    head += struct.pack("<B3sHBHH4sB", 0xEE, b"\0\0\0", chip_id, 0, 0, 0xFFFF, b"\0" * 4, 1)
    body, csum = bytearray(head), 0xEF
    for addr, data in segments:
        body += struct.pack("<II", addr, len(data)) + data
        for byte in data:
            csum ^= byte
    body += b"\0" * (15 - len(body) % 16) + bytes([csum])
    return bytes(body) + hashlib.sha256(body).digest()


def make_app(version: str, project: str = "ecowatt", size: int = 0x14000) -> bytes:
    """An ESP32 app image with ``esp_app_desc_t`` at 0x20 (80 KiB: the swap spans two chunks)."""
    desc = AppDesc(version=version, project_name=project, secure_version=1).pack()
    drom = desc + bytes(range(256)) * ((size - len(desc)) // 256)
    return make_esp_image([(0x3F400020, drom), (0x40080000, b"\x36\x41\x00" * 300)], 0x40080404)


def der_public(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.PKCS1)


def make_bootloader(trusted_der: bytes, chip_id: int = 0) -> bytes:
    dram = pack_key_block(trusted_der).ljust(0x400, b"\0")
    return make_esp_image([(0x3FFF0030, dram), (0x40078000, b"\x36\x41" * 512)], 0x40080698,
                          chip_id)


def imgtool(*args: str) -> None:
    cmd = [sys.executable, "-c", "from imgtool.main import imgtool; imgtool()", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@dataclass(frozen=True)
class Artifacts:
    trusted_der: bytes
    attacker_der: bytes
    bootloader: bytes
    images: dict[str, bytes]


def sign_app(tmp: Path, key: Path | None, version: str, name: str, *extra: str) -> bytes:
    """Sign an app image of ``version`` with the imgtool CLI (unsigned when ``key`` is None)."""
    raw = tmp / f"{name}.raw"
    raw.write_bytes(make_app(version))
    out = tmp / f"{name}.bin"
    args = ["sign", "--header-size", "0x200", "--align", "4", "--version", version,
            "--pad-header", "--slot-size", hex(SLOT_SIZE), *extra]
    if key:
        args += ["--key", str(key)]
    imgtool(*args, str(raw), str(out))
    return out.read_bytes()


def install(flash: FakeFlash, artifacts: Artifacts, primary: str | None = "v1",
            secondary: str | None = None, bootloader: bool = True) -> None:
    """Flash the bootloader and slot images like ``esptool write-flash`` would."""
    layout = layout_for("esp32")
    if bootloader:
        _write(flash, layout.bootloader, artifacts.bootloader)
    if primary:
        _write(flash, layout.primary_slot, artifacts.images[primary])
    if secondary:
        _write(flash, layout.secondary_slot, artifacts.images[secondary])


def _write(flash: FakeFlash, offset: int, data: bytes) -> None:
    flash.erase(offset, -(-len(data) // SECTOR_SIZE) * SECTOR_SIZE)
    flash.write(offset, data)


def boot(flash: FakeFlash, defects: tuple[str, ...] = (), inputs: tuple[str, ...] = (),
         cut: tuple[str, int] | None = None) -> FakeRuntime:
    """One reset of the virtual chip: run the boot chain until it stops; returns the runtime."""
    from hil.sim.boot import run_from_flash
    from hil.sim.firmware import run_app

    rt = FakeRuntime(flash, defects, inputs=inputs)
    if cut:
        rt.arm_power_cut(*cut)
    try:
        run_from_flash(rt, run_app)
    except Halted:
        pass
    return rt
