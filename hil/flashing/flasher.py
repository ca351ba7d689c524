"""Skip-if-identical flashing: compare each region's flash MD5 with the image, write what differs."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from hil.flashing.plan import FlashRegion, FlashReport, RegionResult
from hil.flashing.session import FlashSession, ProgressFn
from hil.serial_port import SerialPort

SECTOR = 0x1000
DELTA_BLOCK = 0x10000  # 64 KiB: one MD5 round trip per block is cheap next to writing it


class FlashTarget(Protocol):
    """What skip-if-identical needs from a connected loader (FlashSession, or a fake in tests)."""

    chip: str
    mac: str

    def flash_md5(self, offset: int, size: int) -> str: ...

    def write(self, region: FlashRegion) -> None: ...

    def erase(self, offset: int, size: int) -> None: ...


def apply_plan(
    target: FlashTarget, regions: Sequence[FlashRegion], *, board: str, port: str, force: bool = False
) -> FlashReport:
    """Write each region whose flash MD5 differs from the image's (all of them with ``force``).

    Within a region that differs only the ``DELTA_BLOCK``-sized blocks whose MD5 differs are
    written: a variant of an image already on the board costs a block, not the whole image (on a
    real board at 921600 baud a MiB costs ~10 s, an MD5 of 64 KiB a few ms).
    """
    report = FlashReport(board=board, port=port, chip=target.chip, mac=target.mac)
    started = time.monotonic()
    for region in regions:
        t0 = time.monotonic()
        if region.size == 0:
            continue
        if force:
            parts = [region]
        elif target.flash_md5(region.offset, region.size) == region.md5:
            parts = []
        else:
            parts = changed_parts(target, region)
        for part in parts:
            target.write(part)
        written = sum(part.size for part in parts)
        report.regions.append(
            RegionResult(
                region.label,
                region.offset,
                region.size,
                "written" if parts else "skipped",
                time.monotonic() - t0,
                written,
            )
        )
    report.seconds = time.monotonic() - started
    return report


def changed_parts(target: FlashTarget, region: FlashRegion, block: int = DELTA_BLOCK) -> list[FlashRegion]:
    """The runs of consecutive blocks of ``region`` whose flash MD5 differs from the image's."""
    parts: list[FlashRegion] = []
    run_start: int | None = None
    for start in range(0, region.size, block):
        chunk = region.data[start : start + block]
        same = target.flash_md5(region.offset + start, len(chunk)) == hashlib.md5(chunk).hexdigest()
        if not same and run_start is None:
            run_start = start
        elif same and run_start is not None:
            parts.append(region.part(run_start, start))
            run_start = None
    if run_start is not None:
        parts.append(region.part(run_start, region.size))
    # Flash MD5 said the region differs; if no block does (MD5 misreport), write it all.
    return parts or [region]


def check_erase_range(offset: int, size: int) -> None:
    """Erase works on whole 4 KiB sectors: refuse a range that is not sector-aligned."""
    if offset % SECTOR or size % SECTOR or size <= 0:
        raise ValueError(
            f"erase range {offset:#x}+{size:#x} must be a positive multiple of 4 KiB at a 4 KiB-aligned offset"
        )


def flash_port(
    port: SerialPort,
    regions: Sequence[FlashRegion],
    *,
    board: str,
    flash_baud: int | None = None,
    progress: ProgressFn | None = None,
    force: bool = False,
    timeout_scale: float = 1.0,
    enter_loader: Callable[[], None] | None = None,
) -> FlashReport:
    """Connect esptool on the open ``port`` and apply ``regions`` skip-if-identical.

    The chip is left in the loader: the caller resets it (``Board.flash`` does, announcing the
    reset to the console). ``enter_loader`` resets it into the loader instead of esptool.
    """
    session = FlashSession(
        port, board, flash_baud=flash_baud, progress=progress, timeout_scale=timeout_scale, enter_loader=enter_loader
    )
    started = time.monotonic()
    session.connect()
    report = apply_plan(session, regions, board=board, port=session.port_name, force=force)
    report.seconds = time.monotonic() - started
    return report


def erase_port(
    port: SerialPort,
    offset: int,
    size: int,
    *,
    board: str,
    label: str = "erase",
    timeout_scale: float = 1.0,
    enter_loader: Callable[[], None] | None = None,
) -> FlashReport:
    """Connect esptool on the open ``port`` and erase ``size`` bytes at ``offset`` (4 KiB aligned)."""
    check_erase_range(offset, size)
    session = FlashSession(port, board, timeout_scale=timeout_scale, enter_loader=enter_loader)
    started = time.monotonic()
    session.connect()
    session.erase(offset, size)
    report = FlashReport(board=board, port=session.port_name, chip=session.chip)
    report.seconds = time.monotonic() - started
    report.regions.append(RegionResult(label, offset, size, "erased", report.seconds))
    return report
