"""The power-cut sweep of an OTA update: every point where power can be cut (after each chunk, at the
verification, each NVS write, each swap step, the self-test and the confirmation), or a sample of
them, and which image the board must settle on after each cut."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from hil.images.fota import load_package
from hil.images.index import Index
from hil.images.layout import SECTOR_SIZE, layout_for
from hil.images.mcuboot import TRAILER_SIZE

SWAP_CHUNK = 0x10000  # the virtual board's scratch-swap unit (hil/sim/boot/swap.py), three steps each
SWAP_STEPS = 3
SWAP_TRAILER_CHUNK = 0xFFFF  # the swap's last step: the primary trailer rewritten
# The kinds of swap step a sample takes, in this order. A cut right after step 1 or 2 erased its
# destination leaves that chunk's data only in the scratch area: the next boot must resume at exactly
# that step (restarting the chunk at step 0 would copy erased flash over it). At the other points the
# source of the step is intact and redoing it is harmless, so they come last.
SWAP_SAMPLE_KINDS = ((1, "erased"), (2, "erased"), (0, "copied"), (1, "copied"), (2, "copied"), (0, "erased"))


@dataclass(frozen=True)
class CutPoint:
    """A point of an update where power is cut: checkpoint and fields, and which image the board must
    settle on afterwards (``old`` = the running one, ``new`` = the update). ``confirm_after``: the new
    image still has to self-test and confirm after the cut."""

    id: str
    checkpoint: str
    fields: dict[str, Any]
    settles_on: Literal["old", "new"]
    confirm_after: bool = True


SELFTEST_PASSED = CutPoint("cut-at-selftest-passed", "ota.selftest_passed", {}, "old")
"""After the new image passed its self-test, before it confirmed: MCUboot must revert it. Of all cuts
it leaves the most behind: a reverted image in the secondary slot, MCUboot's trailers after a swap
back, the attempt record in NVS."""

FIRST_CHUNK = CutPoint("cut-after-first-chunk", "ota.chunk_written", {}, "old")
"""After the first chunk an update writes, whichever it is (a device that resumes a download across
power cycles writes a later one first)."""


def spread(total: int, samples: int) -> list[int]:
    """``samples`` indices of ``range(total)`` spread evenly, first and last included."""
    if samples >= total:
        return list(range(total))
    if samples <= 1:
        return [total - 1]
    return sorted({round(i * (total - 1) / (samples - 1)) for i in range(samples)})


def swap_steps(old_size: int, new_size: int, slot_size: int) -> list[dict[str, Any]]:
    """The checkpoints of a scratch swap of images of these sizes, in the order the swap runs."""
    size = min(max(old_size, new_size), slot_size - TRAILER_SIZE)
    size = -(-size // SECTOR_SIZE) * SECTOR_SIZE
    steps = [
        {"chunk": c, "step": s, "phase": p}
        for c in reversed(range(-(-size // SWAP_CHUNK)))
        for s in range(SWAP_STEPS)
        for p in ("erased", "copied")
    ]
    return [*steps, {"chunk": SWAP_TRAILER_CHUNK, "step": 0, "phase": "trailer"}]


def swap_sample(steps: list[dict[str, Any]], samples: int) -> list[int]:
    """``samples`` indices of ``steps`` (:func:`swap_steps`): the trailer rewrite that commits the
    swap, and steps spread over the chunks from the first swapped to the last (the one holding the
    image header), one per chunk, their kinds taken in the order of :data:`SWAP_SAMPLE_KINDS`."""
    last = len(steps) - 1
    if samples <= 1:
        return [last]
    chunks = list(dict.fromkeys(s["chunk"] for s in steps[:last]))  # in swap order
    picked = set()
    for n, at in enumerate(spread(len(chunks), samples - 1)):
        step, phase = SWAP_SAMPLE_KINDS[n % len(SWAP_SAMPLE_KINDS)]
        picked.add(steps.index({"chunk": chunks[at], "step": step, "phase": phase}))
    return [*sorted(picked), last]


def sweep_points(
    index: Index, mode: str, samples: int, image: str = "app-v2", running: str = "app-v1"
) -> list[CutPoint]:
    """Every point of an update of ``running`` to ``image`` where power can be cut: after each chunk,
    the verification, each NVS write of the attempt record, the swap request, each swap step, the
    self-test and the confirmation (``mode="all"``). ``mode="sample"`` keeps ``samples`` of the
    chunk and swap points together (half each: chunks spread, first and last included; swap steps
    by :func:`swap_sample`) and one NVS write."""
    total = load_package(index.path(f"fota-{image}").parent).manifest.total_chunks
    full = mode == "all"
    chunks = range(total) if full else spread(total, -(-samples // 2))
    points = [CutPoint(f"cut-after-chunk-{n}", "ota.chunk_written", {"chunk": n}, "old") for n in chunks]
    points.append(CutPoint("cut-at-ota-verified", "ota.verified", {}, "old"))
    points += [
        CutPoint(f"cut-at-nvs-write-{key}", "nvs.write", {"key": key}, "old")
        for key in (("ota_from", "ota_to") if full else ("ota_to",))
    ]
    points.append(CutPoint("cut-at-boot-pending", "boot.pending", {}, "new"))
    steps = swap_steps(index.get(running).size, index.get(image).size, layout_for(index.chip).slot_size)
    picked = range(len(steps)) if full else swap_sample(steps, max(samples // 2, 1))
    points += [CutPoint(f"cut-at-swap-step-{i}", "swap.sector", steps[i], "new") for i in picked]
    return [
        *points,
        SELFTEST_PASSED,
        CutPoint("cut-at-boot-confirmed", "boot.confirmed", {}, "new", confirm_after=False),
    ]
