"""The EcoWatt firmware's ``BITPACK`` codec (marker ``0x01``) as pure functions.

Layout: ``[0x01][bits per value][value count]`` then the values MSB-first, bit-packed, the last
byte padded with zero bits. The firmware packs ``uint16_t`` register values, so a width is 1..16 and
a count fits its u8 header byte (at most 255 values, i.e. 25 samples of 10 registers).

:func:`bitunpack` is strict: wrong marker, width, length or non-zero padding bits are a
:class:`~hil.protocol.errors.ProtocolError` (``DECOMPRESSION_FAILED``); it never raises anything else.
"""

from __future__ import annotations

from collections.abc import Sequence

from hil.protocol.errors import ErrorCode, ProtocolError

BITPACK_MARKER = 0x01
HEADER_BYTES = 3
MAX_BITS = 16  # the firmware packs uint16_t register values
MAX_COUNT = 0xFF  # the count travels in one header byte


def packed_size(bits: int, count: int) -> int:
    """Total blob size in bytes for *count* values of *bits* bits, header included."""
    return HEADER_BYTES + (bits * count + 7) // 8


def smallest_width(values: Sequence[int]) -> int:
    """The fewest bits holding every value (at least 1). 1.3.4 does not use it: it always packs 16."""
    return max(1, *(v.bit_length() for v in values)) if values else 1


def bitpack(values: Sequence[int], bits: int) -> bytes:
    """Pack *values* at *bits* bits each; ``ProtocolError`` if a value is negative or does not fit."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
        raise _packing(f"bit width {bits} is outside 1..{MAX_BITS} (the firmware packs uint16 values)")
    if len(values) > MAX_COUNT:
        raise _packing(f"{len(values)} values do not fit the u8 count byte (at most {MAX_COUNT}; 25 samples)")
    acc = 0
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
            raise _packing(f"value {value!r} at index {index} is not an integer in 0..{(1 << bits) - 1}")
        acc = (acc << bits) | value
    total_bits = bits * len(values)
    pad = -total_bits % 8  # MSB-first: the padding bits are the low bits of the last byte
    body = (acc << pad).to_bytes((total_bits + pad) // 8, "big")
    return bytes((BITPACK_MARKER, bits, len(values))) + body


def bitunpack(blob: bytes) -> list[int]:
    """Strict inverse of :func:`bitpack`; ``ProtocolError`` (``DECOMPRESSION_FAILED``) on any inconsistency."""
    if len(blob) < HEADER_BYTES:
        raise _corrupt(f"blob is {len(blob)} bytes, shorter than the {HEADER_BYTES}-byte header")
    marker, bits, count = blob[0], blob[1], blob[2]
    if marker != BITPACK_MARKER:
        raise _corrupt(f"codec marker 0x{marker:02x} is not BITPACK (0x01), the only codec 1.3.4 emits")
    if not 1 <= bits <= MAX_BITS:
        raise _corrupt(f"bit width {bits} is outside 1..{MAX_BITS}")
    expected = packed_size(bits, count)
    if len(blob) != expected:
        raise _corrupt(f"blob is {len(blob)} bytes; {count} values of {bits} bits need exactly {expected}")
    acc = int.from_bytes(blob[HEADER_BYTES:], "big")
    pad = -(bits * count) % 8
    if acc & ((1 << pad) - 1):
        raise _corrupt("padding bits after the last value are not zero")
    acc >>= pad
    mask = (1 << bits) - 1
    return [(acc >> (bits * (count - 1 - i))) & mask for i in range(count)]


def _packing(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_PAYLOAD, f"BITPACK: {message}")


def _corrupt(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.DECOMPRESSION_FAILED, f"compressed_binary: {message}")
