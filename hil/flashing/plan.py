"""What to flash (regions) and what happened (report). Independent of the image index format."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FlashRegion:
    """Bytes to place at a flash offset."""

    offset: int
    data: bytes = field(repr=False)
    label: str = ""

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()

    @property
    def end(self) -> int:
        return self.offset + len(self.data)

    def part(self, start: int, stop: int) -> FlashRegion:
        """The bytes ``[start, stop)`` of this region (relative offsets) as a region of their own."""
        return FlashRegion(self.offset + start, self.data[start:stop], self.label)


@dataclass(frozen=True)
class RegionFromFlash:
    """A region whose bytes are made from what the flash holds there now, read in the same esptool
    session that then writes it (NVS provisioning merged into the firmware's own entries): one
    connection instead of two, and nothing can change the flash between the read and the write."""

    offset: int
    size: int
    make: Callable[[bytes], bytes] = field(repr=False)
    label: str = ""

    def resolve(self, current: bytes) -> FlashRegion:
        """The region to write, made from ``current`` (the ``size`` bytes the flash holds)."""
        return FlashRegion(self.offset, self.make(current), self.label)


PlannedRegion = FlashRegion | RegionFromFlash  # what a flash plan holds


def region(offset: int, source: bytes | str | Path, label: str = "") -> FlashRegion:
    """A region from bytes or a file path (read now)."""
    if isinstance(source, (bytes, bytearray)):
        return FlashRegion(offset, bytes(source), label or f"{offset:#x}")
    path = Path(source)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read image {path} for flash offset {offset:#x}: {exc}") from exc
    return FlashRegion(offset, data, label or path.name)


def plan_from(items: Iterable[tuple[int, bytes | str | Path, str] | FlashRegion]) -> list[FlashRegion]:
    """Regions from ``(offset, path-or-bytes, label)`` tuples; checks they do not overlap."""
    regions = [item if isinstance(item, FlashRegion) else region(*item) for item in items]
    ordered = sorted(regions, key=lambda r: r.offset)
    for a, b in pairwise(ordered):
        if a.end > b.offset:
            raise ValueError(
                f"flash regions overlap: {a.label} [{a.offset:#x}, {a.end:#x}) and {b.label} at {b.offset:#x}"
            )
    return regions


def plan_from_index(index: Any, names: Sequence[str]) -> list[FlashRegion]:
    """Regions for the named artifacts of a firmware index (``hil.images.index.Index``).

    Duck-typed so flashing does not depend on the index format: ``index.flash_plan(names)`` gives
    items with ``offset``, ``path`` and ``name`` (it refuses unflashable artifacts and overlaps).
    """
    return plan_from((item.offset, item.path, item.name) for item in index.flash_plan(names))


@dataclass(frozen=True)
class RegionResult:
    """Outcome for one region."""

    label: str
    offset: int
    size: int
    action: str  # "written" | "skipped" (flash MD5 already matched) | "erased" | verify only: "identical" | "differs"
    seconds: float
    bytes_written: int = 0  # may be less than size: only the blocks whose MD5 differed


@dataclass
class FlashReport:
    """What a flash run did, per region."""

    board: str
    port: str
    chip: str = ""
    mac: str = ""
    regions: list[RegionResult] = field(default_factory=list)
    seconds: float = 0.0
    restarted: str = ""  # how the chip was reset into its app afterwards ("": left in the loader)

    @property
    def bytes_written(self) -> int:
        return sum(r.bytes_written for r in self.regions)

    @property
    def written(self) -> list[str]:
        return [r.label for r in self.regions if r.action == "written"]

    @property
    def skipped(self) -> list[str]:
        return [r.label for r in self.regions if r.action == "skipped"]

    def format(self) -> str:
        """Human-readable summary, one line per region."""
        lines = [
            f"{self.board} ({self.port}, {self.chip or 'chip ?'}): {self.bytes_written} bytes written "
            f"in {self.seconds:.2f} s"
        ]
        lines += [
            f"  {r.offset:#08x} {r.size:>8} B  {r.action:<8} {r.label} ({r.bytes_written} B written, {r.seconds:.2f} s)"
            for r in self.regions
        ]
        return "\n".join(lines)
