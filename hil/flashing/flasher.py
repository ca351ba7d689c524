"""Skip-if-identical flashing: compare each region's flash MD5 with the image, write what differs."""

from __future__ import annotations

import time
from typing import Protocol, Sequence

import serial

from hil.flashing.plan import FlashRegion, FlashReport, RegionResult
from hil.flashing.session import FlashSession, ProgressFn

SECTOR = 0x1000


class FlashTarget(Protocol):
    """What skip-if-identical needs from a connected loader (FlashSession, or a fake in tests)."""

    chip: str

    def flash_md5(self, offset: int, size: int) -> str: ...

    def write(self, region: FlashRegion) -> None: ...

    def erase(self, offset: int, size: int) -> None: ...


def apply_plan(target: FlashTarget, regions: Sequence[FlashRegion], *, board: str, port: str,
               force: bool = False) -> FlashReport:
    """Write each region whose flash MD5 differs from the image's (all of them with ``force``)."""
    report = FlashReport(board=board, port=port, chip=target.chip)
    started = time.monotonic()
    for region in regions:
        t0 = time.monotonic()
        if region.size == 0:
            continue
        if not force and target.flash_md5(region.offset, region.size) == region.md5:
            action = "skipped"
        else:
            target.write(region)
            action = "written"
        report.regions.append(RegionResult(region.label, region.offset, region.size, action, time.monotonic() - t0))
    report.seconds = time.monotonic() - started
    return report


def check_erase_range(offset: int, size: int) -> None:
    """Erase works on whole 4 KiB sectors: refuse a range that is not sector-aligned."""
    if offset % SECTOR or size % SECTOR or size <= 0:
        raise ValueError(f"erase range {offset:#x}+{size:#x} must be a positive multiple of 4 KiB at a "
                         "4 KiB-aligned offset")


def flash_port(port: serial.SerialBase, regions: Sequence[FlashRegion], *, board: str,
               flash_baud: int | None = None, progress: ProgressFn | None = None, force: bool = False,
               timeout_scale: float = 1.0) -> FlashReport:
    """Connect esptool on the open ``port`` and apply ``regions`` skip-if-identical.

    The chip is left in the loader: the caller resets it (``Board.flash`` does, announcing the
    reset to the console).
    """
    session = FlashSession(port, board, flash_baud=flash_baud, progress=progress, timeout_scale=timeout_scale)
    started = time.monotonic()
    session.connect()
    report = apply_plan(session, regions, board=board, port=session.port_name, force=force)
    report.seconds = time.monotonic() - started
    return report


def erase_port(port: serial.SerialBase, offset: int, size: int, *, board: str, label: str = "erase",
               timeout_scale: float = 1.0) -> FlashReport:
    """Connect esptool on the open ``port`` and erase ``size`` bytes at ``offset`` (4 KiB aligned)."""
    check_erase_range(offset, size)
    session = FlashSession(port, board, timeout_scale=timeout_scale)
    started = time.monotonic()
    session.connect()
    session.erase(offset, size)
    report = FlashReport(board=board, port=session.port_name, chip=session.chip)
    report.seconds = time.monotonic() - started
    report.regions.append(RegionResult(label, offset, size, "erased", report.seconds))
    return report
