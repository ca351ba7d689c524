"""The device firmware model the virtual board's boot chain starts (the EcoWatt app)."""

from hil.sim.firmware.app import Device, run_app, start

__all__ = ["Device", "run_app", "start"]
