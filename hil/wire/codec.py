"""The named codec functions of a wire profile: what data cannot say (a MAC construction is not a regex).

A codec turns the common upload model, :class:`hil.protocol.upload.UploadPacket` (device id, nonce,
payload string, MAC, and the flags outside the MAC), into its format's JSON envelope and back, and
both encodes (what a device or a crafted attack sends) and decodes (what a capture holds). The
profile's TOML names its codec (``[meta] codec``); :func:`codec_named` resolves the name.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from hil.protocol.readings import Readings
from hil.protocol.upload import UploadPacket


class UploadCodec(Protocol):
    """One format's upload pipeline, in both directions. Every malformed input is a ``ProtocolError``."""

    name: str

    def encode_plaintext(self, readings: Readings) -> bytes:
        """The plaintext a device serialises for *readings* (before compression/encryption)."""

    def decode_plaintext(self, plaintext: bytes) -> Readings:
        """Strict parse of an unwrapped plaintext (``ProtocolError`` saying why)."""

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
        """A packet carrying *plaintext* (encrypted iff *aes_key*), MAC'd under *hmac_key* (zeros if None);
        *timestamp* (unix s) goes into the envelope of formats that carry one."""

    def expected_mac(self, packet: UploadPacket, *, hmac_key: bytes, aes_key: bytes | None) -> str | None:
        """The MAC *packet* must carry under these keys; None when its payload cannot even be unwrapped
        far enough to compute one (a MAC over decrypted bytes)."""

    def unwrap(self, packet: UploadPacket, *, aes_key: bytes | None) -> bytes:
        """Payload string → plaintext bytes (decode, decrypt, inflate as the flags say), no MAC check."""

    def plaintext_markers(self, stored: Sequence[tuple[str, float]]) -> list[str]:
        """Strings that appear in the plaintext of uploads carrying the *stored* (register, value)
        rows and never in an envelope: an observer who finds one reads the plaintext."""

    def envelope(self, packet: UploadPacket) -> dict[str, Any]:
        """The JSON object sent on the wire, keys in the firmware's order (the device id only if the
        format carries it in the body)."""

    def parse(self, doc: Mapping[str, Any], *, path_device_id: str | None) -> UploadPacket:
        """Schema check of a decoded body; *path_device_id* is the id from the URL for formats that carry it there."""


def macs_equal(expected: str | None, given: str) -> bool:
    """Constant-time comparison of a hex MAC (either case) with the expected one (None never matches)."""
    return expected is not None and hmac.compare_digest(expected, given.lower())


def _api() -> UploadCodec:
    from hil.wire.codecs.ecowatt_api import EcowattApiCodec

    return EcowattApiCodec()


def _fw134() -> UploadCodec:
    from hil.wire.codecs.ecowatt_fw134 import EcowattFw134Codec

    return EcowattFw134Codec()


CODECS: Mapping[str, Callable[[], UploadCodec]] = {"ecowatt-api": _api, "ecowatt-fw134": _fw134}


def codec_named(name: str, *, source: str) -> UploadCodec:
    """The codec a profile names (``ValueError`` naming *source* and the known codecs otherwise)."""
    make = CODECS.get(name)
    if make is None:
        raise ValueError(f"{source}: unknown codec {name!r}; known codecs: {', '.join(sorted(CODECS))}")
    return make()
