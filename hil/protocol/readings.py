"""The plaintext inside an upload payload: ``{"device_id","timestamp","readings":[{"register","value"}]}``.

Pure functions: :func:`encode_readings` is what a device serialises before compressing, and
:func:`decode_readings` is the strict check the server applies after the payload was unwrapped.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TypeGuard

from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.jsonio import load_json_object

# The inverter registers PROTOCOL.md names; anything else in a reading is rejected.
REGISTERS: tuple[str, ...] = ("Vac1", "Iac1", "Fac1", "Vpv1", "Vpv2", "Ipv1", "Ipv2", "Temp", "Pow", "Pac")
DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
TIMESTAMP_MAX = 2**63 - 1  # fits an SQLite INTEGER and a 64-bit time_t


@dataclass(frozen=True)
class Reading:
    """One register sample."""

    register: str
    value: float


@dataclass(frozen=True)
class Readings:
    """The decoded plaintext of one upload."""

    device_id: str
    timestamp: int
    readings: tuple[Reading, ...]


def valid_device_id(value: object) -> TypeGuard[str]:
    """True when *value* is a device id PROTOCOL.md allows (1–32 chars of ``[A-Za-z0-9_-]``)."""
    return isinstance(value, str) and DEVICE_ID_PATTERN.fullmatch(value) is not None


def encode_readings(readings: Readings) -> bytes:
    """Serialise *readings* as compact UTF-8 JSON, keys in the order the firmware writes them."""
    doc = {
        "device_id": readings.device_id,
        "timestamp": readings.timestamp,
        "readings": [{"register": r.register, "value": r.value} for r in readings.readings],
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode_readings(data: bytes) -> Readings:
    """Parse and validate a plaintext; raise :class:`ProtocolError` (``INVALID_PAYLOAD``) saying why."""
    doc = load_json_object(data, what="readings plaintext")
    device_id = doc.get("device_id")
    if not valid_device_id(device_id):
        raise _invalid("readings plaintext: device_id must be 1-32 chars of [A-Za-z0-9_-]")
    timestamp = doc.get("timestamp")
    if not _is_int(timestamp) or not 0 <= timestamp <= TIMESTAMP_MAX:
        raise _invalid("readings plaintext: timestamp must be a non-negative integer (unix seconds)")
    items = doc.get("readings")
    if not isinstance(items, list):
        raise _invalid("readings plaintext: readings must be a list")
    return Readings(device_id, timestamp, tuple(_reading(i, item) for i, item in enumerate(items)))


def _reading(index: int, item: object) -> Reading:
    if not isinstance(item, dict):
        raise _invalid(f"readings[{index}] must be an object")
    register, value = item.get("register"), item.get("value")
    if register not in REGISTERS:
        raise _invalid(f"readings[{index}].register must be one of {', '.join(REGISTERS)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid(f"readings[{index}].value must be a number")
    try:
        number = float(value)  # a 400-digit JSON integer overflows here
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise _invalid(f"readings[{index}].value must be a finite number")
    return Reading(register, number)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _invalid(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_PAYLOAD, message)
