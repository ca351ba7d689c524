"""The inner JSON of an ``ecowatt-fw134`` upload (a ``compressed_sensor_batch``) as pure functions.

:func:`encode_inner` writes what firmware 1.3.4 serialises (compact, keys in its order, one
``compressed_data`` packet holding every sample BITPACKed at 16 bits); :func:`decode_inner` is the
strict check a server applies after the MAC verified: size, fixed fields, the register map, and
metadata that must agree with the blob it describes. Re-exported by :mod:`hil.protocol.fw134`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

from hil.protocol.bitpack import MAX_BITS, bitpack, bitunpack
from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.jsonio import load_json_object
from hil.protocol.readings import REGISTERS, TIMESTAMP_MAX, Reading, Readings, valid_device_id

MAX_INNER_BYTES = 4096  # the firmware's serialisation buffer
DATA_TYPE = "compressed_sensor_batch"
METHOD = "BITPACK"
U32_MAX = 2**32 - 1
REGISTER_MAPPING: dict[str, str] = {str(i): name for i, name in enumerate(REGISTERS)}
REGISTER_LAYOUT: list[int] = list(range(len(REGISTERS)))
# raw register int = round(value * scale), from the known-answer sample (230.1 V -> 2301, 49.98 Hz -> 4998)
SCALES: dict[str, int] = {
    "Vac1": 10,
    "Iac1": 10,
    "Fac1": 100,
    "Vpv1": 10,
    "Vpv2": 10,
    "Ipv1": 10,
    "Ipv2": 10,
    "Temp": 10,
    "Pow": 1,
    "Pac": 1,
}


@dataclass(frozen=True)
class Batch:
    """One upload's samples; each sample is the 10 raw register ints in :data:`REGISTERS` order."""

    device_id: str
    timestamp: int  # unix seconds
    samples: tuple[tuple[int, ...], ...]
    sampling_interval: int = 5  # seconds
    compression_time_us: int = 120
    bits: int = MAX_BITS  # 1.3.4 always packs 16 bits, although 13 would hold every KAT value


def encode_inner(batch: Batch) -> bytes:
    """The inner JSON bytes for *batch*; ``ProtocolError`` if it cannot be expressed (bad value, too big)."""
    if not valid_device_id(batch.device_id):
        raise _invalid(f"device_id {batch.device_id!r} must be 1-32 chars of [A-Za-z0-9_-]")
    _require_int(batch.timestamp, "timestamp", TIMESTAMP_MAX // 1000)
    _require_int(batch.sampling_interval, "sampling_interval", U32_MAX)
    _require_int(batch.compression_time_us, "compression_time_us", U32_MAX)
    if not batch.samples:
        raise _invalid(f"batch of {batch.device_id} has no samples; the firmware never uploads an empty batch")
    for index, sample in enumerate(batch.samples):
        if len(sample) != len(REGISTERS):
            raise _invalid(
                f"sample {index} has {len(sample)} values; expected {len(REGISTERS)} ({', '.join(REGISTERS)})"
            )
    blob = bitpack([v for sample in batch.samples for v in sample], batch.bits)
    original, compressed = len(batch.samples) * len(REGISTERS) * 2, len(blob)
    academic, savings = round(compressed / original, 2), round((1 - compressed / original) * 100)
    doc: dict[str, Any] = {
        "device_id": batch.device_id,
        "timestamp": batch.timestamp,
        "data_type": DATA_TYPE,
        "total_samples": len(batch.samples),
        "sampling_interval": batch.sampling_interval,
        "register_mapping": REGISTER_MAPPING,
        "compressed_data": [
            {
                "compressed_binary": base64.b64encode(blob).decode("ascii"),
                "decompression_metadata": {
                    "method": METHOD,
                    "register_count": len(REGISTERS),
                    "sample_count": len(batch.samples),
                    "original_size_bytes": original,
                    "compressed_size_bytes": compressed,
                    "timestamp": batch.timestamp * 1000,
                    "register_layout": REGISTER_LAYOUT,
                },
                "performance_metrics": {
                    "academic_ratio": academic,
                    "traditional_ratio": round(original / compressed, 2),
                    "compression_time_us": batch.compression_time_us,
                    "savings_percent": savings,
                    "lossless_verified": True,
                },
            }
        ],
        "session_summary": {
            "total_original_bytes": original,
            "total_compressed_bytes": compressed,
            "overall_academic_ratio": academic,
            "overall_savings_percent": savings,
        },
    }
    inner = json.dumps(doc, separators=(",", ":")).encode("ascii")
    if len(inner) > MAX_INNER_BYTES:
        raise _invalid(
            f"inner JSON of {batch.device_id} is {len(inner)} bytes; the firmware's limit is {MAX_INNER_BYTES}"
        )
    return inner


def decode_inner(data: bytes) -> Batch:
    """Parse and validate inner JSON bytes; ``ProtocolError`` saying why (a corrupt blob: ``DECOMPRESSION_FAILED``)."""
    if len(data) > MAX_INNER_BYTES:
        raise _invalid(f"inner JSON is {len(data)} bytes; firmware 1.3.4 never sends more than {MAX_INNER_BYTES}")
    doc = load_json_object(data, what="fw134 inner JSON")
    device_id = doc.get("device_id")
    if not valid_device_id(device_id):
        raise _invalid("inner JSON: device_id must be 1-32 chars of [A-Za-z0-9_-]")
    timestamp = _int_field(doc, "timestamp", "inner JSON", TIMESTAMP_MAX)
    if doc.get("data_type") != DATA_TYPE:
        raise _invalid(f"inner JSON: data_type must be {DATA_TYPE!r}")
    total_samples = _int_field(doc, "total_samples", "inner JSON", U32_MAX)
    sampling_interval = _int_field(doc, "sampling_interval", "inner JSON", U32_MAX)
    if doc.get("register_mapping") != REGISTER_MAPPING:
        raise _invalid(f"inner JSON: register_mapping must map 0..9 to {', '.join(REGISTERS)} in that order")
    items = doc.get("compressed_data")
    if not isinstance(items, list) or not items:
        raise _invalid("inner JSON: compressed_data must be a non-empty list of packets")
    packets = [_packet(index, item) for index, item in enumerate(items)]
    samples = tuple(sample for packet in packets for sample in packet.samples)
    if total_samples not in (len(packets), len(samples)):
        raise _invalid(f"inner JSON: total_samples {total_samples} is neither the packet nor the sample count")
    if len({packet.bits for packet in packets}) > 1:
        raise _invalid("inner JSON: packets use different bit widths; 1.3.4 packs every packet at 16 bits")
    _check_summary(doc.get("session_summary"), packets)
    return Batch(device_id, timestamp, samples, sampling_interval, packets[0].compression_time_us, packets[0].bits)


def batch_from_readings(readings: Readings, *, sampling_interval: int = 5) -> Batch:
    """One sample of *readings* (each register exactly once) as raw register ints, ``round(value * scale)``."""
    values: dict[str, float] = {}
    for reading in readings.readings:
        if reading.register in values:
            raise _invalid(f"readings of {readings.device_id} name register {reading.register} twice")
        values[reading.register] = reading.value
    missing = [name for name in REGISTERS if name not in values]
    if missing or len(values) != len(REGISTERS):
        raise _invalid(f"readings of {readings.device_id} lack register(s) {', '.join(missing)}; fw134 sends all 10")
    sample = tuple(_raw(name, values[name]) for name in REGISTERS)
    return Batch(readings.device_id, readings.timestamp, (sample,), sampling_interval)


def readings_from_batch(batch: Batch) -> Readings:
    """Every sample's registers as readings (``raw / scale``), all stamped with the batch's timestamp."""
    return Readings(
        batch.device_id,
        batch.timestamp,
        tuple(
            Reading(name, raw / SCALES[name])
            for sample in batch.samples
            for name, raw in zip(REGISTERS, sample, strict=True)
        ),
    )


@dataclass(frozen=True)
class _Packet:
    samples: tuple[tuple[int, ...], ...]
    bits: int
    original_size: int
    compressed_size: int
    compression_time_us: int


def _packet(index: int, item: object) -> _Packet:
    where = f"compressed_data[{index}]"
    if not isinstance(item, dict):
        raise _invalid(f"{where} must be an object")
    text = item.get("compressed_binary")
    if not isinstance(text, str) or not text.isascii():
        raise _invalid(f"{where}.compressed_binary must be a base64 string")
    try:
        blob = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{where}.compressed_binary is not valid standard base64") from None
    values = bitunpack(blob)
    meta = item.get("decompression_metadata")
    if not isinstance(meta, dict):
        raise _invalid(f"{where}.decompression_metadata must be an object")
    mwhere = f"{where}.decompression_metadata"
    if meta.get("method") != METHOD:
        raise _invalid(f"{mwhere}.method must be {METHOD!r} (the only codec 1.3.4 emits)")
    if _int_field(meta, "register_count", mwhere, U32_MAX) != len(REGISTERS):
        raise _invalid(f"{mwhere}.register_count must be {len(REGISTERS)}")
    if meta.get("register_layout") != REGISTER_LAYOUT:
        raise _invalid(f"{mwhere}.register_layout must be {REGISTER_LAYOUT}")
    sample_count = _int_field(meta, "sample_count", mwhere, U32_MAX)
    if sample_count < 1 or sample_count * len(REGISTERS) != len(values):
        raise _invalid(f"{mwhere}.sample_count {sample_count} disagrees with the blob's {len(values)} values")
    _check_size(meta, "original_size_bytes", len(values) * 2, mwhere)
    _check_size(meta, "compressed_size_bytes", len(blob), mwhere)
    _int_field(meta, "timestamp", mwhere, TIMESTAMP_MAX)
    metrics = item.get("performance_metrics")
    if not isinstance(metrics, dict):
        raise _invalid(f"{where}.performance_metrics must be an object")
    pwhere = f"{where}.performance_metrics"
    for key in ("academic_ratio", "traditional_ratio", "savings_percent"):
        _number_field(metrics, key, pwhere)
    if not isinstance(metrics.get("lossless_verified"), bool):
        raise _invalid(f"{pwhere}.lossless_verified must be true or false")
    n = len(REGISTERS)
    return _Packet(
        samples=tuple(tuple(values[i : i + n]) for i in range(0, len(values), n)),
        bits=blob[1],
        original_size=len(values) * 2,
        compressed_size=len(blob),
        compression_time_us=_int_field(metrics, "compression_time_us", pwhere, U32_MAX),
    )


def _check_summary(summary: object, packets: list[_Packet]) -> None:
    if not isinstance(summary, dict):
        raise _invalid("inner JSON: session_summary must be an object")
    _check_size(summary, "total_original_bytes", sum(p.original_size for p in packets), "session_summary")
    _check_size(summary, "total_compressed_bytes", sum(p.compressed_size for p in packets), "session_summary")
    for key in ("overall_academic_ratio", "overall_savings_percent"):
        _number_field(summary, key, "session_summary")


def _check_size(doc: dict[str, Any], key: str, expected: int, where: str) -> None:
    if _int_field(doc, key, where, U32_MAX) != expected:
        raise _invalid(f"{where}.{key} is {doc[key]}, but the blob gives {expected}")


def _int_field(doc: dict[str, Any], key: str, where: str, maximum: int) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise _invalid(f"{where}.{key} must be an integer in 0..{maximum}")
    return value


def _number_field(doc: dict[str, Any], key: str, where: str) -> None:
    value = doc.get(key)
    finite = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    if isinstance(value, bool) or not finite:
        raise _invalid(f"{where}.{key} must be a finite number")


def _require_int(value: object, name: str, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise _invalid(f"batch {name} {value!r} must be an integer in 0..{maximum}")


def _raw(register: str, value: float) -> int:
    scaled = value * SCALES[register]
    if not math.isfinite(scaled) or not 0 <= round(scaled) <= (1 << MAX_BITS) - 1:
        raise _invalid(f"{register} = {value} does not fit a uint16 register at scale x{SCALES[register]}")
    return round(scaled)


def _invalid(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_PAYLOAD, message)
