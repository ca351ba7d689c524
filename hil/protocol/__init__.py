"""hil.protocol: the wire formats of PROTOCOL.md as pure functions (server, device model and tests share them)."""

from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.readings import REGISTERS, Reading, Readings, decode_readings, encode_readings
from hil.protocol.upload import (
    MAX_BODY_BYTES,
    NONCE_MAX,
    UploadPacket,
    build_packet,
    compute_mac,
    open_packet,
    open_payload,
    parse_packet,
    verify_mac,
)

__all__ = [
    "MAX_BODY_BYTES",
    "NONCE_MAX",
    "REGISTERS",
    "ErrorCode",
    "ProtocolError",
    "Reading",
    "Readings",
    "UploadPacket",
    "build_packet",
    "compute_mac",
    "decode_readings",
    "encode_readings",
    "open_packet",
    "open_payload",
    "parse_packet",
    "verify_mac",
]
