"""The real esptool CLI (plain pyserial RFC2217 client) against `hil sim` subprocesses.

pyserial's client costs ~0.2 s per esptool command, so every esptool run takes 10-25 s. All runs
start together (one board each) in a module fixture; the tests then assert on the collected results.
"""

from __future__ import annotations

import concurrent.futures
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hil.images.layout import FLASH_SIZE
from hil.sim.power import PowerSwitch

from .simproc import SimProcess, esptool

# 8 KiB, compressible, full of SLIP (C0/DB) and Telnet (FF) specials.
NASTY = (bytes([0xC0, 0xDB, 0xFF, 0xDC, 0xDD, 0xFF, 0xFF, 0x00]) * 16 + bytes(range(256))) * 22
NASTY = NASTY[:0x2000]
assert len(NASTY) == 0x2000
SMALL = NASTY[:0x800]
CHANGED = NASTY[:100] + b"\x00" + NASTY[101:]
ADDR = 0x10000


@dataclass
class Job:
    chip: str
    args: list[str]
    seeded: bool = False
    rc: int = -1
    out: str = ""
    status: dict = field(default_factory=dict)
    flash: bytes = b""
    mac: str = ""
    sim_stderr: str = ""


JOBS: dict[str, Job] = {
    "write_stub_compressed": Job("esp32", ["write-flash", hex(ADDR), "nasty.bin"]),
    "write_no_compress": Job("esp32", ["write-flash", "--no-compress", hex(ADDR), "nasty.bin"]),
    "write_no_stub": Job("esp32", ["--no-stub", "write-flash", hex(ADDR), "small.bin"]),
    "write_no_stub_no_compress": Job("esp32", ["--no-stub", "write-flash", "--no-compress", hex(ADDR), "small.bin"]),
    "verify_ok": Job("esp32", ["verify-flash", hex(ADDR), "nasty.bin"], seeded=True),
    "verify_changed": Job("esp32", ["verify-flash", hex(ADDR), "changed.bin"], seeded=True),
    "read_flash": Job("esp32", ["read-flash", hex(ADDR), hex(len(NASTY)), "read_flash.bin"], seeded=True),
    "erase_region": Job("esp32", ["erase-region", hex(ADDR), "0x1000"], seeded=True),
    "erase_flash": Job("esp32", ["erase-flash"], seeded=True),
    "baud_921600": Job("esp32", ["-b", "921600", "read-mac"]),
    "flash_id_no_reset": Job("esp32", ["--after", "no-reset", "flash-id"]),
    "c6_chip_id": Job("esp32c6", ["chip-id"]),
    "c6_write": Job("esp32c6", ["write-flash", hex(ADDR), "nasty.bin"]),
    "c6_no_stub_write": Job("esp32c6", ["--no-stub", "write-flash", hex(ADDR), "small.bin"]),
}


def _run(name: str, job: Job, root: Path) -> None:
    state = root / name
    state.mkdir()
    if job.seeded:   # a board that already holds NASTY: the state dir is the board
        (state / "flash.bin").write_bytes(b"\xff" * ADDR + NASTY + b"\xff" * (FLASH_SIZE - ADDR - len(NASTY)))
    sim = SimProcess(state, job.chip).start()
    try:
        result = esptool(sim.url, *job.args, cwd=root)
        job.rc, job.out = result.returncode, result.stdout + result.stderr
        job.status = PowerSwitch(state / "control.sock").status()
        job.mac = json.loads((state / "board.json").read_text())["mac"]
    finally:
        job.sim_stderr = sim.stop()
    job.flash = (state / "flash.bin").read_bytes()


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    root = tmp_path_factory.mktemp("esptool")
    (root / "nasty.bin").write_bytes(NASTY)
    (root / "small.bin").write_bytes(SMALL)
    (root / "changed.bin").write_bytes(CHANGED)
    with concurrent.futures.ThreadPoolExecutor(len(JOBS)) as pool:
        futures = [pool.submit(_run, name, job, root) for name, job in JOBS.items()]
        for future in futures:
            future.result()
    for job in JOBS.values():
        job.read_back = (root / "read_flash.bin").read_bytes() if (root / "read_flash.bin").exists() else b""
    return JOBS


def _ok(job: Job) -> None:
    assert job.rc == 0, job.out[-3000:]
    assert "Traceback" not in job.sim_stderr, job.sim_stderr


@pytest.mark.parametrize("name", ["write_stub_compressed", "write_no_compress", "c6_write"])
def test_write_flash_stub(jobs, name):
    job = jobs[name]
    _ok(job)
    assert "Hash of data verified" in job.out
    assert job.flash[ADDR:ADDR + len(NASTY)] == NASTY
    assert job.flash[ADDR + len(NASTY):ADDR + 0x3000] == b"\xff" * (0x3000 - len(NASTY))
    assert ("compressed" in job.out) == (name != "write_no_compress")


@pytest.mark.parametrize("name", ["write_no_stub", "write_no_stub_no_compress", "c6_no_stub_write"])
def test_write_flash_rom(jobs, name):
    job = jobs[name]
    _ok(job)
    assert "Stub flasher running" not in job.out
    assert job.flash[ADDR:ADDR + len(SMALL)] == SMALL


def test_verify_flash_passes_then_fails_after_data_changed(jobs):
    _ok(jobs["verify_ok"])
    assert "Verification successful" in jobs["verify_ok"].out
    bad = jobs["verify_changed"]
    assert bad.rc != 0 and "Verification failed" in bad.out


def test_read_flash_is_byte_identical(jobs):
    _ok(jobs["read_flash"])
    assert jobs["read_flash"].read_back == NASTY


def test_erase_region_and_erase_flash(jobs):
    _ok(jobs["erase_region"])
    region = jobs["erase_region"].flash
    assert region[ADDR:ADDR + 0x1000] == b"\xff" * 0x1000
    assert region[ADDR + 0x1000:ADDR + 0x2000] == NASTY[0x1000:0x2000]
    _ok(jobs["erase_flash"])
    assert jobs["erase_flash"].flash == b"\xff" * FLASH_SIZE


def test_high_baud_and_mac(jobs):
    job = jobs["baud_921600"]
    _ok(job)
    assert "Changing baud rate to 921600" in job.out and f"MAC:                {job.mac}" in job.out


def test_flash_id_and_no_reset_stays_in_rom_bootloader(jobs):
    job = jobs["flash_id_no_reset"]
    _ok(job)
    assert "Manufacturer: ef" in job.out and "Device: 4016" in job.out and "Detected flash size: 4MB" in job.out
    assert "Staying in bootloader" in job.out
    assert job.status["mode"] == "download"   # the stub's soft reset returns to the latched ROM loader


def test_hard_reset_after_leaves_download_mode(jobs):
    for name in ("baud_921600", "write_stub_compressed", "c6_chip_id"):
        assert "Hard resetting via RTS pin" in jobs[name].out
        assert jobs[name].status["mode"] in ("app", "idle"), (name, jobs[name].status)


def test_c6_identity(jobs):
    job = jobs["c6_chip_id"]
    _ok(job)
    assert "ESP32-C6 (QFN40) (revision v0.1)" in job.out
    assert f"BASE MAC:           {job.mac}" in job.out
