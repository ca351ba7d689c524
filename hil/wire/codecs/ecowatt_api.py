"""Codec of the ``ecowatt-api`` profile (PROTOCOL.md): :mod:`hil.protocol.upload` behind the codec interface."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from hil.protocol import upload
from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.readings import Readings, decode_readings, encode_readings
from hil.protocol.upload import UploadPacket


class EcowattApiCodec:
    """zlib → optional AES-128-CBC (random IV inside the payload) → base64; HMAC over ascii(nonce) ‖ ascii(payload)."""

    name = "ecowatt-api"

    def encode_plaintext(self, readings: Readings) -> bytes:
        return encode_readings(readings)

    def decode_plaintext(self, plaintext: bytes) -> Readings:
        return decode_readings(plaintext)

    def seal(
        self,
        device_id: str,
        nonce: int,
        plaintext: bytes,
        *,
        hmac_key: bytes | None,
        aes_key: bytes | None,
        compressed: bool,
        timestamp: int | None = None,
    ) -> UploadPacket:
        body = upload.compress(plaintext) if compressed else plaintext
        payload = upload.seal_payload(body, aes_key=aes_key)
        packet = UploadPacket(
            device_id=device_id,
            nonce=nonce,
            payload=payload,
            mac="0" * 64,
            compressed=compressed,
            encrypted=aes_key is not None,
            compression_type=upload.COMPRESSION_TYPE if compressed else None,
            timestamp=None if timestamp is None else upload.iso_time(timestamp),
        )
        return packet if hmac_key is None else replace(packet, mac=upload.compute_mac(hmac_key, nonce, payload))

    def expected_mac(self, packet: UploadPacket, *, hmac_key: bytes, aes_key: bytes | None) -> str | None:
        return upload.compute_mac(hmac_key, packet.nonce, packet.payload)

    def unwrap(self, packet: UploadPacket, *, aes_key: bytes | None) -> bytes:
        return upload.open_payload(packet, aes_key=aes_key)

    def plaintext_markers(self, stored: Sequence[tuple[str, float]]) -> list[str]:
        return sorted({'"value":' + json.dumps(value) for _, value in stored})

    def envelope(self, packet: UploadPacket) -> dict[str, Any]:
        return packet.to_dict()

    def parse(self, doc: Mapping[str, Any], *, path_device_id: str | None) -> UploadPacket:
        packet = upload.parse_packet(doc)
        if path_device_id is not None and packet.device_id != path_device_id:  # a route with the id in the path
            raise ProtocolError(
                ErrorCode.INVALID_PAYLOAD,
                f"device_id {packet.device_id!r} in the body differs from {path_device_id!r} in the upload path",
            )
        return packet
