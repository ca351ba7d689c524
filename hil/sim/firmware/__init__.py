"""The device firmware model the virtual board's boot chain starts (the EcoWatt app)."""

from hil.sim.firmware.app import COMMANDS, run_app, start
from hil.sim.firmware.device import Device

__all__ = ["COMMANDS", "Device", "run_app", "start"]
