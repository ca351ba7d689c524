"""MCUboot (Espressif port) boot flow: finish an interrupted swap, decide the swap type from the
trailers, validate and swap, validate the primary slot, then load it — with the port's log lines."""

from __future__ import annotations

from hil.images import mcuboot as mb
from hil.images.layout import FlashLayout, layout_for
from hil.sim.boot.esp_image import parse_esp_image, segment_kind
from hil.sim.boot.swap import ScratchSwap
from hil.sim.boot.validate import Verdict, validate_slot
from hil.sim.booted import BootedImage
from hil.sim.runtime import Runtime

MCUBOOT_BUILD = "v2.1.0"
PRIMARY, SECONDARY = 0, 1
AREA_IDS = {PRIMARY: 1, SECONDARY: 2}  # Espressif port: bootloader 0, primary 1, secondary 2


class McubootLog:
    """``[esp32] [INF] msg`` lines of the Espressif port."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def inf(self, msg: str) -> None:
        self._rt.write_line(f"[{self._rt.chip.name}] [INF] {msg}")

    def err(self, msg: str) -> None:
        self._rt.write_line(f"[{self._rt.chip.name}] [ERR] {msg}")


def _flag_code(flag: mb.Flag) -> int:
    return {mb.Flag.SET: 1, mb.Flag.BAD: 2, mb.Flag.UNSET: 3}[flag]  # BOOT_FLAG_* values


class Mcuboot:
    """One run of the bootloader on ``rt`` trusting ``trusted_key_der``."""

    def __init__(self, rt: Runtime, trusted_key_der: bytes | None) -> None:
        self._rt, self._key = rt, trusted_key_der
        self._layout: FlashLayout = layout_for(rt.chip.name)
        self._log = McubootLog(rt)

    def _slot(self, slot: int) -> bytes:
        return self._rt.flash.read(self._layout.slot_offset(slot), self._layout.slot_size)

    def _trailer(self, slot: int) -> mb.TrailerState:
        end = self._layout.slot_offset(slot) + self._layout.slot_size
        size = mb.trailer_tail_size()
        return mb.parse_trailer(self._rt.flash.read(end - size, size))

    def _validate(self, slot: int) -> tuple[bytes, Verdict]:
        data = self._slot(slot)
        return data, validate_slot(data, self._key, self._rt.defects)

    def boot(self) -> BootedImage | None:
        """Run the boot flow. Returns the image to start, or ``None`` after ``Unable to find
        bootable image`` (the caller then hangs like the real bootloader)."""
        self._log.inf(f"*** Booting MCUboot build {MCUBOOT_BUILD} ***")
        primary = self._trailer(PRIMARY)
        self._log.inf(
            f"Primary image: magic={primary.magic.value}, swap_type=0x"
            f"{primary.swap_info & 0xF if primary.swap_info != 0xFF else 1:x}, "
            f"copy_done=0x{_flag_code(primary.copy_done):x}, "
            f"image_ok=0x{_flag_code(primary.image_ok):x}"
        )
        swap = ScratchSwap(self._rt, self._layout)
        pending = swap.read_status()
        if pending is not None:
            self._log.inf(f"Image index: 0, Swap type: {pending.swap_type.log_name}")
            self._log.inf("Resuming interrupted swap using scratch algorithm.")
            swap.resume(pending)
        else:
            self._swap_if_requested(swap, primary)
        self._log.inf("Boot source: primary slot")
        data, verdict = self._validate(PRIMARY)
        if not verdict:
            self._log.err("Image in the primary slot is not valid!")
            self._log.err("Unable to find bootable image")
            return None
        if verdict.signer_key is not None:
            # Evidence that validation ran (the scenarios assert it): only printed after the hash
            # and the signature were both checked, never when a defect skipped them.
            self._log.inf(
                f"Image 0: SHA-256 OK, RSA-2048 PSS signature OK, key hash {mb.key_hash(verdict.signer_key).hex()[:16]}"
            )
        return self._load(data, verdict)

    def _swap_if_requested(self, swap: ScratchSwap, primary: mb.TrailerState) -> None:
        swap_type = mb.swap_type_for(primary, self._trailer(SECONDARY))
        if swap_type is mb.SwapType.REVERT and "mcuboot-never-revert" in self._rt.defects:
            swap_type = mb.SwapType.NONE
        if swap_type in (mb.SwapType.TEST, mb.SwapType.PERM) and not self._validate(SECONDARY)[1]:
            self._log.err("Image in the secondary slot is not valid!")
            self._rt.flash.erase(self._layout.secondary_slot, self._layout.slot_size)
            swap_type = mb.SwapType.NONE
        self._log.inf(f"Image index: 0, Swap type: {swap_type.log_name}")
        if swap_type is mb.SwapType.NONE:
            return
        self._log.inf("Starting swap using scratch algorithm.")
        swap.start(swap_type, self._image_size(PRIMARY), self._image_size(SECONDARY))

    def _image_size(self, slot: int) -> int:
        """Bytes to swap for the image in ``slot`` (the whole data area if unreadable)."""
        try:
            return mb.parse_image(self._slot(slot)).total_size
        except mb.McubootFormatError:
            return self._layout.slot_size

    def _load(self, data: bytes, verdict: Verdict) -> BootedImage:
        header = verdict.header or mb.parse_header(data)
        self._log.inf(f"Loading image 0 - slot 0 from flash, area id: {AREA_IDS[PRIMARY]}")
        app = bytes(data[header.hdr_size : header.hdr_size + header.img_size])
        esp = parse_esp_image(app)
        for seg in esp.segments:
            kind = segment_kind(seg.load_addr)
            if kind in ("DRAM", "IRAM"):
                paddr = self._layout.primary_slot + header.hdr_size + seg.file_offset
                self._log.inf(f"{kind} segment: start=0x{paddr:x}, size=0x{len(seg.data):x}, vaddr=0x{seg.load_addr:x}")
        self._log.inf(f"start=0x{esp.entry:x}")
        return BootedImage(self._layout.primary_slot, header, app, esp.entry)
