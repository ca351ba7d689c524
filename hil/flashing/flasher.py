"""Skip-if-identical flashing: compare each region's flash MD5 with the image, write what differs."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hil.flashing.identity import ExpectedIdentity, check_identity
from hil.flashing.plan import FlashRegion, FlashReport, PlannedRegion, RegionResult
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

    def read(self, offset: int, size: int) -> bytes: ...


def apply_plan(
    target: FlashTarget, regions: Sequence[PlannedRegion], *, board: str, port: str, force: bool = False
) -> FlashReport:
    """Write each region whose flash MD5 differs from the image's (all of them with ``force``); a
    :class:`RegionFromFlash` is read first and made from what the flash holds.

    Within a region that differs only the ``DELTA_BLOCK``-sized blocks whose MD5 differs are
    written: a variant of an image already on the board costs a block, not the whole image (on a
    real board at 921600 baud a MiB costs ~10 s, an MD5 of 64 KiB a few ms).
    """
    report = FlashReport(board=board, port=port, chip=target.chip, mac=target.mac)
    started = time.monotonic()
    for planned in regions:
        t0 = time.monotonic()
        if isinstance(planned, FlashRegion):
            region = planned
        else:  # made from what the flash holds: read in this session, nothing writes in between
            region = planned.resolve(target.read(planned.offset, planned.size))
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


@dataclass(frozen=True)
class Restart:
    """Reset the chip into its application when the work is done, while the stub is still connected
    (:meth:`FlashSession.hard_reset`): ``announce`` runs just before (the console expects the ROM
    banner), ``board_pulse`` is the board's own EN pulse where it may stand in for esptool's."""

    announce: Callable[[], None]
    board_pulse: Callable[[], None] | None = None


@dataclass(frozen=True)
class LoaderEntry:
    """How a session reaches the ROM loader: the board's ``enter_loader`` and/or esptool's own
    ``esptool_reset`` mode (see :class:`FlashSession`)."""

    enter_loader: Callable[[], None] | None = None
    esptool_reset: str | None = "default-reset"


def _connected(
    port: SerialPort,
    board: str,
    entry: LoaderEntry | None,
    expect: ExpectedIdentity | None,
    *,
    timeout_scale: float,
    flash_baud: int | None = None,
    progress: ProgressFn | None = None,
) -> FlashSession:
    """A session connected to the stub, the chip checked against ``expect`` (nothing written yet)."""
    entry = entry or LoaderEntry()
    session = FlashSession(
        port,
        board,
        flash_baud=flash_baud,
        progress=progress,
        timeout_scale=timeout_scale,
        enter_loader=entry.enter_loader,
        esptool_reset=entry.esptool_reset,
    )
    session.connect()
    if expect is not None:
        check_identity(board, session.port_name, session.chip, session.mac, expect)
    return session


def _restart(session: FlashSession, restart: Restart | None, report: FlashReport) -> None:
    if restart is not None:
        restart.announce()
        report.restarted = session.hard_reset(restart.board_pulse)


def flash_port(
    port: SerialPort,
    regions: Sequence[PlannedRegion],
    *,
    board: str,
    flash_baud: int | None = None,
    progress: ProgressFn | None = None,
    force: bool = False,
    timeout_scale: float = 1.0,
    entry: LoaderEntry | None = None,
    expect: ExpectedIdentity | None = None,
    restart: Restart | None = None,
) -> FlashReport:
    """Connect esptool on the open ``port``, check the chip against ``expect``, apply ``regions``
    skip-if-identical, and with ``restart`` reset the chip into its app (else it stays in the loader).
    """
    started = time.monotonic()
    session = _connected(
        port, board, entry, expect, timeout_scale=timeout_scale, flash_baud=flash_baud, progress=progress
    )
    report = apply_plan(session, regions, board=board, port=session.port_name, force=force)
    _restart(session, restart, report)
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
    entry: LoaderEntry | None = None,
    expect: ExpectedIdentity | None = None,
    restart: Restart | None = None,
) -> FlashReport:
    """Connect esptool on the open ``port``, check the chip against ``expect`` and erase ``size``
    bytes at ``offset`` (4 KiB aligned); ``restart`` as for :func:`flash_port`."""
    check_erase_range(offset, size)
    started = time.monotonic()
    session = _connected(port, board, entry, expect, timeout_scale=timeout_scale)
    session.erase(offset, size)
    report = FlashReport(board=board, port=session.port_name, chip=session.chip, mac=session.mac)
    report.regions.append(RegionResult(label, offset, size, "erased", time.monotonic() - started))
    _restart(session, restart, report)
    report.seconds = time.monotonic() - started
    return report


def verify_port(
    port: SerialPort,
    regions: Sequence[FlashRegion],
    *,
    board: str,
    timeout_scale: float = 1.0,
    entry: LoaderEntry | None = None,
    expect: ExpectedIdentity | None = None,
    restart: Restart | None = None,
) -> FlashReport:
    """Connect esptool on the open ``port``, check the chip against ``expect`` and compare the flash
    MD5 of each region with its bytes, writing nothing (action ``"identical"`` or ``"differs"``);
    ``restart`` as for :func:`flash_port`. Regions over the same range (candidate images of one
    size) cost one MD5."""
    started = time.monotonic()
    session = _connected(port, board, entry, expect, timeout_scale=timeout_scale)
    report = FlashReport(board=board, port=session.port_name, chip=session.chip, mac=session.mac)
    digests: dict[tuple[int, int], str] = {}
    for region in regions:
        t0 = time.monotonic()
        key = (region.offset, region.size)
        if key not in digests:
            digests[key] = session.flash_md5(*key)
        action = "identical" if digests[key] == region.md5 else "differs"
        report.regions.append(RegionResult(region.label, region.offset, region.size, action, time.monotonic() - t0))
    _restart(session, restart, report)
    report.seconds = time.monotonic() - started
    return report


def read_port(
    port: SerialPort,
    offset: int,
    size: int,
    *,
    board: str,
    flash_baud: int | None = None,
    timeout_scale: float = 1.0,
    entry: LoaderEntry | None = None,
    expect: ExpectedIdentity | None = None,
) -> bytes:
    """Connect esptool on the open ``port``, check the chip against ``expect`` and read ``size``
    bytes at ``offset`` (esptool read_flash); the chip stays in the loader."""
    session = _connected(port, board, entry, expect, timeout_scale=timeout_scale, flash_baud=flash_baud)
    return session.read(offset, size)
