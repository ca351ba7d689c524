"""Swap using scratch, resumable after a power cut.

Chunks of the image area are swapped last to first, three steps each, as MCUboot does:
0 scratch <- secondary, 1 secondary <- primary, 2 primary <- scratch. After each step a status
entry is appended (NOR: written into erased cells, never rewritten) to a status sector at the end
of the scratch area; the next boot finds the last completed step there and carries on, so a cut at
any point ends in a complete swap. (MCUboot keeps the status in the slot trailers and the scratch
trailer; keeping it only in the scratch area is this model's simplification — same guarantees.)
The trailer bytes of a slot are never copied: after the last chunk the primary trailer is written
fresh (magic, copy_done, image_ok for perm/revert) and the secondary trailer is left erased.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hil.images import mcuboot as mb
from hil.images.layout import SECTOR_SIZE, FlashLayout
from hil.sim.runtime import Runtime

STATUS_MAGIC = b"HIL-SWAP-STATUS\0"
STATUS_HEADER = struct.Struct("<16sBBHI8x")  # magic, swap type, pad, chunk count, swap size
STATUS_ENTRY = struct.Struct("<HBB")  # chunk, step, written marker (0 = written)
CHUNK_SIZE = 0x10000
FINAL_CHUNK = 0xFFFF  # status "chunk" of the trailer-rewrite step
STEPS = 3


@dataclass(frozen=True)
class SwapStatus:
    """A swap in progress: its type, size and the last completed (chunk, step), if any."""

    swap_type: mb.SwapType
    swap_size: int
    done: tuple[int, int] | None


class ScratchSwap:
    """Runs (or resumes) one swap between the primary and secondary slots of ``layout``."""

    def __init__(self, rt: Runtime, layout: FlashLayout) -> None:
        self._rt, self._layout = rt, layout
        self._status_at = layout.scratch + layout.scratch_size - SECTOR_SIZE
        self._data_limit = layout.slot_size - mb.TRAILER_SIZE  # image bytes never reach this
        if layout.scratch_size - SECTOR_SIZE < CHUNK_SIZE:
            raise ValueError(f"scratch area 0x{layout.scratch_size:x} too small for swap chunks")

    def read_status(self) -> SwapStatus | None:
        """The interrupted swap recorded in the scratch area, or ``None``."""
        raw = self._rt.flash.read(self._status_at, SECTOR_SIZE)
        magic, swap_type, _, _, size = STATUS_HEADER.unpack_from(raw)
        if magic != STATUS_MAGIC:
            return None
        done = None
        for at in range(STATUS_HEADER.size, SECTOR_SIZE - STATUS_ENTRY.size + 1, STATUS_ENTRY.size):
            chunk, step, marker = STATUS_ENTRY.unpack_from(raw, at)
            if marker != 0:
                break
            done = (chunk, step)
        return SwapStatus(mb.SwapType(swap_type), size, done)

    def area_magic(self) -> mb.MagicState:
        """The scratch area's magic as MCUboot logs it: good while a swap is recorded there."""
        raw = self._rt.flash.read(self._status_at, len(STATUS_MAGIC))
        if raw == STATUS_MAGIC:
            return mb.MagicState.GOOD
        return mb.MagicState.UNSET if raw == b"\xff" * len(raw) else mb.MagicState.BAD

    def start(self, swap_type: mb.SwapType, primary_size: int, secondary_size: int) -> None:
        """Record a new swap of the larger of both images, then run it."""
        size = min(max(primary_size, secondary_size), self._data_limit)
        size = -(-size // SECTOR_SIZE) * SECTOR_SIZE
        self._rt.flash.erase(self._status_at, SECTOR_SIZE)
        chunks = -(-size // CHUNK_SIZE)
        self._rt.flash.write(self._status_at, STATUS_HEADER.pack(STATUS_MAGIC, swap_type.value, 0xFF, chunks, size))
        self.resume(SwapStatus(swap_type, size, None))

    def resume(self, status: SwapStatus) -> None:
        """Carry out every step after ``status.done``, finish the trailers, clear the status."""
        chunks = -(-status.swap_size // CHUNK_SIZE)
        plan = [(c, s) for c in reversed(range(chunks)) for s in range(STEPS)]
        plan.append((FINAL_CHUNK, 0))
        start = plan.index(status.done) + 1 if status.done in plan else 0
        for entry_no, (chunk, step) in enumerate(plan[start:], start):
            if chunk == FINAL_CHUNK:
                self._finish(status)
            else:
                self._step(chunk, step, status.swap_size)
            self._record(entry_no, chunk, step)
        self._rt.flash.erase(self._status_at, SECTOR_SIZE)  # the swap is now committed

    def _step(self, chunk: int, step: int, swap_size: int) -> None:
        primary, secondary = self._layout.primary_slot, self._layout.secondary_slot
        scratch = self._layout.scratch
        src, dst = ((secondary, scratch), (primary, secondary), (scratch, primary))[step]
        at = chunk * CHUNK_SIZE
        length = min(CHUNK_SIZE, swap_size - at)
        data = self._rt.flash.read(src + (0 if src == scratch else at), length)
        dst_at = dst + (0 if dst == scratch else at)
        self._rt.flash.erase(dst_at, -(-length // SECTOR_SIZE) * SECTOR_SIZE)
        self._rt.checkpoint("swap.sector", chunk=chunk, step=step, phase="erased")
        if dst != scratch:  # keep the destination's trailer bytes erased for _finish
            data = data[: max(0, self._data_limit - at)]
        self._rt.flash.write(dst_at, data)
        self._rt.checkpoint("swap.sector", chunk=chunk, step=step, phase="copied")

    def _finish(self, status: SwapStatus) -> None:
        last_sector = self._layout.slot_size - SECTOR_SIZE
        for slot in (self._layout.primary_slot, self._layout.secondary_slot):
            if status.swap_size <= last_sector:  # trailer sector not swapped: holds the old trailer
                self._rt.flash.erase(slot + last_sector, SECTOR_SIZE)
        end = self._layout.primary_slot + self._layout.slot_size
        for offset, value in mb.swapped_writes(status.swap_type):
            self._rt.flash.write(end + offset, value)
        self._rt.checkpoint("swap.sector", chunk=FINAL_CHUNK, step=0, phase="trailer")

    def _record(self, entry_no: int, chunk: int, step: int) -> None:
        at = self._status_at + STATUS_HEADER.size + entry_no * STATUS_ENTRY.size
        self._rt.flash.write(at, STATUS_ENTRY.pack(chunk, step, 0))
