"""The lines the Espressif port of MCUboot prints, formatted exactly as its C sources do.

Every line is ``ets_printf(TARGET " [INF] " fmt "\\n\\r")`` with ``TARGET`` = ``[esp32]``,
``[esp32c6]``... (mcu-tools/mcuboot ``boot/espressif/hal/include/mcuboot_config/mcuboot_logging.h``).
Each method names the function whose ``BOOT_LOG_*`` it reproduces; the console profile
``ecowatt-idf`` cites the same sources. Nothing here is sim-only: a line a real bootloader does not
print (such as a verification it passed) must not appear, since scenarios infer what it leaves out.
"""

from __future__ import annotations

from hil.images import mcuboot as mb
from hil.sim.runtime import Runtime

_FLAG_CODES = {mb.Flag.SET: 1, mb.Flag.BAD: 2, mb.Flag.UNSET: 3}  # BOOT_FLAG_SET / _BAD / _UNSET
_SWAP_INFO_ERASED = 0xFF


def logged_swap_type(swap_info: int) -> int:
    """The ``swap_type`` boot_read_swap_state reports for a trailer's ``swap_info`` byte: its low
    nibble, or BOOT_SWAP_TYPE_NONE when erased or out of range (bootutil_public.c)."""
    swap_type = swap_info & 0x0F
    if swap_info == _SWAP_INFO_ERASED or swap_type > mb.SwapType.REVERT.value:
        return mb.SwapType.NONE.value
    return swap_type


class McubootLog:
    """Writes MCUboot's log lines to the board's console."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def _inf(self, msg: str) -> None:
        self._rt.write_line(f"[{self._rt.chip.name}] [INF] {msg}")

    def _err(self, msg: str) -> None:
        self._rt.write_line(f"[{self._rt.chip.name}] [ERR] {msg}")

    def banner(self, build: str) -> None:
        """hal/src/bootloader_banner.c ``__wrap_bootloader_print_banner``."""
        self._inf(f"*** Booting MCUboot build {build} ***")

    def swap_state(
        self, area: str, magic: mb.MagicState, swap_info: int, copy_done: mb.Flag, image_ok: mb.Flag
    ) -> None:
        """swap_scratch.c ``swap_status_source``: ``BOOT_LOG_SWAP_STATE(area, state)``."""
        self._inf(
            f"{area}: magic={magic.value}, swap_type=0x{logged_swap_type(swap_info):x}, "
            f"copy_done=0x{_FLAG_CODES[copy_done]:x}, image_ok=0x{_FLAG_CODES[image_ok]:x}"
        )

    def boot_source(self, source: str) -> None:
        """swap_scratch.c ``swap_status_source``: ``none``, ``scratch`` or ``primary slot``."""
        self._inf(f"Boot source: {source}")

    def swap_type(self, swap_type: mb.SwapType) -> None:
        """bootutil_public.c ``boot_swap_type_multi`` (single image: index 0)."""
        self._inf(f"Image index: 0, Swap type: {swap_type.log_name}")

    def swap_started(self) -> None:
        """swap_scratch.c ``swap_run`` (a new swap and the completion of an interrupted one)."""
        self._inf("Starting swap using scratch algorithm.")

    def slot_not_valid(self, slot: str) -> None:
        """loader.c ``boot_validate_slot``: ``primary`` or ``secondary``."""
        self._err(f"Image in the {slot} slot is not valid!")

    def no_bootable_image(self) -> None:
        """main.c ``main`` when ``boot_go`` fails (then ``FIH_PANIC``)."""
        self._err("Unable to find bootable image")

    def handing_over(self, image_off: int, hdr_size: int) -> None:
        """main.c ``main`` then ``do_boot``: the lines between boot_go's success and the load."""
        self._inf("Disabling RNG early entropy source...")
        self._inf(f"br_image_off = 0x{image_off:x}")
        self._inf(f"ih_hdr_size = 0x{hdr_size:x}")

    def loading(self, index: int, slot: int, area_id: int) -> None:
        """port/esp_loader.c ``esp_app_image_load``."""
        self._inf(f"Loading image {index} - slot {slot} from flash, area id: {area_id}")

    def segment(self, kind: str, start: int, size: int, vaddr: int) -> None:
        """port/esp_loader.c ``load_common_image``: ``DRAM`` or ``IRAM``."""
        self._inf(f"{kind} segment: start=0x{start:x}, size=0x{size:x}, vaddr=0x{vaddr:x}")

    def entry(self, address: int) -> None:
        """port/esp_loader.c ``load_common_image``: the jump into the application."""
        self._inf(f"start=0x{address:x}")
