"""MCUboot (Espressif port) boot flow: find where an interrupted swap's status is and finish it, or
decide the swap type from the trailers, validate the secondary slot and swap; validate the primary
slot; load it. The log lines (``mcuboot_log``) come in the order bootutil's loader.c prints them.

Defects honoured here: ``mcuboot-never-revert`` and ``mcuboot-boot-in-place`` (:meth:`Mcuboot._swap_if_requested`)."""

from __future__ import annotations

from collections.abc import Callable

from hil.images import mcuboot as mb
from hil.images.layout import SECTOR_SIZE, FlashLayout, layout_for
from hil.sim.boot.esp_image import parse_esp_image, segment_kind
from hil.sim.boot.mcuboot_log import McubootLog
from hil.sim.boot.swap import ScratchSwap, SwapStatus
from hil.sim.boot.validate import Verdict, validate_slot
from hil.sim.booted import BootedImage
from hil.sim.runtime import Runtime

MCUBOOT_BUILD = "v2.1.0"
PRIMARY, SECONDARY = 0, 1
AREA_IDS = {PRIMARY: 1, SECONDARY: 2}  # Espressif port: bootloader 0, primary 1, secondary 2
SLOT_NAMES = {PRIMARY: "primary", SECONDARY: "secondary"}
ERASED_MAGIC = 0xFFFFFFFF


def boot_source(primary: mb.TrailerState, scratch: mb.MagicState) -> str:
    """swap_scratch.c ``boot_status_tables``: where the status of an interrupted swap would be."""
    good = mb.MagicState.GOOD
    if primary.magic is good and scratch is not good and primary.copy_done is mb.Flag.SET:
        return "none"
    if primary.magic is good and scratch is not good and primary.copy_done is mb.Flag.UNSET:
        return "primary slot"
    if scratch is good:
        return "scratch"
    if primary.magic is mb.MagicState.UNSET and primary.copy_done is mb.Flag.UNSET:
        return "primary slot"
    return "none"


class Mcuboot:
    """One run of the bootloader on ``rt`` trusting ``trusted_key_der``."""

    def __init__(
        self, rt: Runtime, trusted_key_der: bytes | None, hash_time: Callable[[int], float] = lambda size: 0.0
    ) -> None:
        self._rt, self._key = rt, trusted_key_der
        self._hash_time = hash_time  # device time of hashing an image of that many bytes
        self._layout: FlashLayout = layout_for(rt.chip.name)
        self._log = McubootLog(rt)

    def _slot(self, slot: int) -> bytes:
        return self._rt.flash.read(self._layout.slot_offset(slot), self._layout.slot_size)

    def _trailer(self, slot: int) -> mb.TrailerState:
        end = self._layout.slot_offset(slot) + self._layout.slot_size
        size = mb.trailer_tail_size()
        return mb.parse_trailer(self._rt.flash.read(end - size, size))

    def _validate(self, slot: int) -> tuple[bytes, Verdict | None]:
        """The slot and its verdict; ``None`` for an erased header, which loader.c's
        boot_validate_slot turns down without a word (no image there, nothing to refuse)."""
        data = self._slot(slot)
        if mb.parse_header(data).magic == ERASED_MAGIC:
            return data, None
        hashing = self._hash_time(min(mb.parse_header(data).img_size, self._layout.slot_size))
        if hashing > 0:
            self._rt.wait(hashing)
        verdict = validate_slot(data, self._key, self._rt.defects)
        if not verdict:
            self._log.slot_not_valid(SLOT_NAMES[slot])
        return data, verdict

    def boot(self) -> BootedImage | None:
        """Run the boot flow. Returns the image to start, or ``None`` after ``Unable to find
        bootable image`` (the caller then hangs like the real bootloader)."""
        self._log.banner(MCUBOOT_BUILD)
        swap = ScratchSwap(self._rt, self._layout)
        pending = self._read_status(swap)
        if pending is not None:  # loader.c boot_complete_partial_swap: no swap-type line
            self._log.swap_started()
            swap.resume(pending)
        elif (in_place := self._swap_if_requested(swap)) is not None:
            return self._load(*in_place)  # mcuboot-boot-in-place: the secondary's bytes, logged as slot 0
        data, verdict = self._validate(PRIMARY)  # MCUBOOT_VALIDATE_PRIMARY_SLOT: every boot
        if not verdict:
            self._log.no_bootable_image()
            return None
        return self._load(data, verdict)

    def _read_status(self, swap: ScratchSwap) -> SwapStatus | None:
        """swap_read_status -> swap_status_source: the trailers as read, and the swap in progress."""
        primary, scratch = self._trailer(PRIMARY), swap.area_magic()
        self._log.swap_state("Primary image", primary.magic, primary.swap_info, primary.copy_done, primary.image_ok)
        pending = swap.read_status()
        swap_info = pending.swap_type.value if pending else mb.ERASED
        self._log.swap_state("Scratch", scratch, swap_info, mb.Flag.UNSET, mb.Flag.UNSET)
        self._log.boot_source(boot_source(primary, scratch))
        return pending

    def _swap_if_requested(self, swap: ScratchSwap) -> tuple[bytes, Verdict] | None:
        """loader.c boot_validated_swap_type, then boot_perform_update. Returns the secondary slot and
        its verdict when it is to run in place (``mcuboot-boot-in-place``), else ``None``."""
        swap_type = mb.swap_type_for(self._trailer(PRIMARY), self._trailer(SECONDARY))
        if swap_type is mb.SwapType.REVERT and "mcuboot-never-revert" in self._rt.defects:
            swap_type = mb.SwapType.NONE
        self._log.swap_type(swap_type)
        if swap_type is mb.SwapType.NONE:
            return None
        data, verdict = self._validate(SECONDARY)
        if not verdict:  # refused (or erased): dropped, never swapped in
            self._rt.flash.erase(self._layout.secondary_slot, self._layout.slot_size)
            return None
        self._log.swap_started()
        if "mcuboot-boot-in-place" in self._rt.defects:
            self._mark_swapped(swap_type)
            return data, verdict
        swap.start(swap_type, self._image_size(PRIMARY), self._image_size(SECONDARY))
        return None

    def _mark_swapped(self, swap_type: mb.SwapType) -> None:
        """The trailers a finished swap leaves (``ScratchSwap``'s last step), with no image byte moved."""
        for slot in (PRIMARY, SECONDARY):
            self._rt.flash.erase(self._layout.trailer_sector(slot), SECTOR_SIZE)
        end = self._layout.primary_slot + self._layout.slot_size
        for offset, value in mb.swapped_writes(swap_type):
            self._rt.flash.write(end + offset, value)

    def _image_size(self, slot: int) -> int:
        """Bytes to swap for the image in ``slot`` (the whole data area if unreadable)."""
        try:
            return mb.parse_image(self._slot(slot)).total_size
        except mb.McubootFormatError:
            return self._layout.slot_size

    def _load(self, data: bytes, verdict: Verdict) -> BootedImage:
        header = verdict.header or mb.parse_header(data)
        self._log.handing_over(self._layout.primary_slot, header.hdr_size)
        self._log.loading(0, PRIMARY, AREA_IDS[PRIMARY])
        app = bytes(data[header.hdr_size : header.hdr_size + header.img_size])
        esp = parse_esp_image(app)
        for seg in esp.segments:
            kind = segment_kind(seg.load_addr)
            if kind in ("DRAM", "IRAM"):
                start = self._layout.primary_slot + header.hdr_size + seg.file_offset
                self._log.segment(kind, start, len(seg.data), seg.load_addr)
        self._log.entry(esp.entry)
        return BootedImage(self._layout.primary_slot, header, app, esp.entry)
