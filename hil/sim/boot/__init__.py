"""The virtual ESP32's boot chain: ROM second stage → MCUboot → the device app.

``run_from_flash(rt)`` is what the board calls on its CPU thread after a normal reset, once it has
printed the ROM banner and reset cause.
"""

from __future__ import annotations

from hil.images import mcuboot as mb
from hil.images.layout import layout_for
from hil.sim.boot.mcuboot import BootedImage, Mcuboot
from hil.sim.boot.rom_loader import load_second_stage
from hil.sim.runtime import Runtime

HANG_INTERVAL_S = 1.0

__all__ = ["run_from_flash", "BootedImage"]


def _hang(rt: Runtime) -> None:
    """Where the bootloader stops when nothing can boot: until reset or power-off (``Halted``)."""
    while True:
        rt.wait(HANG_INTERVAL_S)


def _primary_unchecked(rt: Runtime) -> BootedImage:
    """What a ROM that skips the bootloader would run: the primary slot's payload, unchecked."""
    layout = layout_for(rt.chip.name)
    data = rt.flash.read(layout.primary_slot, layout.slot_size)
    header = mb.parse_header(data)
    app = data[header.hdr_size: header.hdr_size + min(header.img_size, layout.slot_size)]
    return BootedImage(layout.primary_slot, header, app, 0)


def run_from_flash(rt: Runtime) -> None:
    """Boot from flash: ROM loads the bootloader, MCUboot picks/swaps/validates, the app runs.
    Returns only if the app returns; raises ``Reboot``/``Halted`` as the runtime contract says."""
    from hil.sim.firmware import run_app  # the app is the next stage, imported when reached

    stage = load_second_stage(rt)
    if stage is None:  # rom-boots-without-bootloader defect
        run_app(rt, _primary_unchecked(rt))
        return
    booted = Mcuboot(rt, stage.trusted_key_der).boot()
    if booted is None:
        _hang(rt)
    run_app(rt, booted)
