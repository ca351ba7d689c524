"""The hand-over from the boot chain to the app: what MCUboot starts and the app's entry point.

A leaf of its own (it imports neither ``hil.sim.boot`` nor ``hil.sim.firmware``) so that the boot
chain and the app share this contract without either package importing the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hil.images import mcuboot as mb
from hil.sim.runtime import Runtime


@dataclass(frozen=True)
class BootedImage:
    """The image MCUboot hands over: slot 0 contents after the MCUboot header."""

    slot_offset: int
    header: mb.ImageHeader
    app_image: bytes  # the ESP32 app image (payload)
    entry: int


App = Callable[[Runtime, BootedImage], None]
"""The app's entry point: runs on the CPU thread until reset, as the ``Runtime`` contract says."""
