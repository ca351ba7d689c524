"""The inverter's registers as the device samples them: plausible values around midday, varying with
a seed (the upload's nonce) and identical for equal inputs, so a test can recompute what was sent.

Apart from the upload cycle (:mod:`hil.sim.firmware.upload`) because it is the device's data, not its
security logic: no property of the seeds depends on the values, and mutation testing leaves it out.
"""

from __future__ import annotations

import math

from hil.protocol.readings import REGISTERS, Reading, Readings

# Nominal value and swing of each register (an inverter around midday).
_NOMINAL = {
    "Vac1": (230.0, 3.0),
    "Iac1": (4.3, 0.4),
    "Fac1": (50.0, 0.05),
    "Vpv1": (320.0, 12.0),
    "Vpv2": (310.0, 12.0),
    "Ipv1": (5.1, 0.6),
    "Ipv2": (4.8, 0.6),
    "Temp": (38.0, 4.0),
    "Pow": (1000.0, 120.0),
    "Pac": (980.0, 115.0),
}


def sample_readings(device_id: str, seed: int, unix_time: int) -> Readings:
    """One sample of every register: plausible, varying with *seed*, identical for equal inputs."""
    values = []
    for index, register in enumerate(REGISTERS):
        nominal, swing = _NOMINAL[register]
        wave = math.sin(seed * (0.37 + 0.11 * index) + index)
        values.append(Reading(register, round(nominal + swing * wave, 2)))
    return Readings(device_id, unix_time, tuple(values))
