"""Codec of the ``ecowatt-fw134`` profile (the public EcoWatt firmware 1.3.4): :mod:`hil.protocol.fw134`
behind the codec interface.

The device id travels in the URL path, not the body; the MAC is over ``nonce (u32 BE) ‖ the inner
JSON bytes`` (after decryption when ``encrypted``), so computing it needs the AES key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hil.protocol import fw134
from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.readings import Readings
from hil.protocol.upload import UploadPacket


class EcowattFw134Codec:
    """Inner JSON with a bit-packed batch → optional AES-128-CBC (fixed IV) → base64; HMAC over nonce ‖ plaintext."""

    name = "ecowatt-fw134"

    def encode_plaintext(self, readings: Readings) -> bytes:
        return fw134.encode_inner(fw134.batch_from_readings(readings))

    def decode_plaintext(self, plaintext: bytes) -> Readings:
        return fw134.readings_from_batch(fw134.decode_inner(plaintext))

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
        if compressed:
            raise ValueError("ecowatt-fw134 has no envelope-level compression (its batch is bit-packed inside)")
        mac = fw134.compute_mac(hmac_key, nonce, plaintext) if hmac_key is not None else "0" * 64
        payload = fw134.seal(plaintext, aes_key=aes_key)
        return UploadPacket(device_id, nonce, payload, mac, False, aes_key is not None, None, None)

    def expected_mac(self, packet: UploadPacket, *, hmac_key: bytes, aes_key: bytes | None) -> str | None:
        try:
            inner = self.unwrap(packet, aes_key=aes_key)
        except ProtocolError:
            return None
        return fw134.compute_mac(hmac_key, packet.nonce, inner)

    def unwrap(self, packet: UploadPacket, *, aes_key: bytes | None) -> bytes:
        return fw134.unseal(packet.payload, encrypted=packet.encrypted, aes_key=aes_key)

    def plaintext_markers(self, stored: Sequence[tuple[str, float]]) -> list[str]:
        # the values are bit-packed (not text); the inner JSON's fixed fields are in every plaintext
        return ['"data_type":"compressed_sensor_batch"', '"register_mapping":']

    def envelope(self, packet: UploadPacket) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "nonce": packet.nonce,
            "payload": packet.payload,
            "mac": packet.mac,
            "encrypted": packet.encrypted,
            "compressed": packet.compressed,
        }
        return doc

    def parse(self, doc: Mapping[str, Any], *, path_device_id: str | None) -> UploadPacket:
        if path_device_id is None:
            raise ProtocolError(ErrorCode.INVALID_PAYLOAD, "ecowatt-fw134 carries the device id in the path")
        env = fw134.parse_envelope(doc)
        return UploadPacket(path_device_id, env.nonce, env.payload, env.mac, env.compressed, env.encrypted, None, None)
