"""The virtual ESP32's boot chain: ROM second stage → MCUboot → the app it is given.

``boot_chain(app)`` is the ``Firmware`` a flashed board runs on its CPU thread after a normal reset,
once it has printed the ROM banner and reset cause. The app is a parameter, not an import: it is the
next stage, and the boot chain must not depend on what it starts (the composition, ``hil sim``,
chooses it).
"""

from __future__ import annotations

from typing import NoReturn

from hil.images import mcuboot as mb
from hil.images.layout import layout_for
from hil.sim.boot.mcuboot import Mcuboot
from hil.sim.boot.rom_loader import load_second_stage
from hil.sim.booted import App, BootedImage
from hil.sim.runtime import Firmware, Runtime
from hil.sim.timing import TIMINGS, SimTiming

HANG_INTERVAL_S = 1.0

__all__ = ["boot_chain", "run_from_flash"]


def _hang(rt: Runtime) -> NoReturn:
    """Where the bootloader stops when nothing can boot: until reset or power-off (``Halted``)."""
    while True:
        rt.wait(HANG_INTERVAL_S)


def _primary_unchecked(rt: Runtime) -> BootedImage:
    """What a ROM that skips the bootloader would run: the primary slot's payload, unchecked."""
    layout = layout_for(rt.chip.name)
    data = rt.flash.read(layout.primary_slot, layout.slot_size)
    header = mb.parse_header(data)
    app = data[header.hdr_size : header.hdr_size + min(header.img_size, layout.slot_size)]
    return BootedImage(layout.primary_slot, header, app, 0)


def _take(rt: Runtime, seconds: float) -> None:
    """Spend device time on a step (nothing when instant: no wait, no chance to be stopped there)."""
    if seconds > 0:
        rt.wait(seconds)


def run_from_flash(rt: Runtime, app: App, timing: SimTiming = TIMINGS["instant"]) -> None:
    """Boot from flash: ROM loads the bootloader, MCUboot picks/swaps/validates, ``app`` runs, each
    step taking ``timing``'s device time. Returns only if the app returns; raises
    ``Reboot``/``Halted`` as the runtime contract says."""
    stage = load_second_stage(rt)
    _take(rt, timing.rom_boot)
    if stage is None:  # rom-boots-without-bootloader defect
        app(rt, _primary_unchecked(rt))
        return
    booted = Mcuboot(rt, stage.trusted_key_der, timing.hash_time).boot()
    if booted is None:
        _hang(rt)
    _take(rt, timing.app_start)
    app(rt, booted)


def boot_chain(app: App, timing: SimTiming = TIMINGS["instant"]) -> Firmware:
    """The board's firmware: :func:`run_from_flash` handing over to ``app``."""

    def firmware(rt: Runtime) -> None:
        run_from_flash(rt, app, timing)

    return firmware
