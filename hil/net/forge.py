"""Forged uploads: mutations of a captured upload packet and packets crafted from scratch, in any
wire format (a :class:`Forger` is bound to a :class:`~hil.wire.profile.WireProfile`).

Every mutation that changes MAC'd data (nonce, payload) takes ``key``: without it the MAC is kept
(an attacker without the key: the server must refuse it for a bad MAC); with it the MAC is
recomputed (an attacker who has the key, or a test isolating a later check such as the replay
window). Fields outside the MAC (the device id, the profile's flags) are forged the same way so
scenarios stay table-driven; the table follows the profile's ``[envelope]``. :meth:`Forger.body`
writes bodies no valid packet can hold (missing or null fields, wrong types, a nonce past u32).
Keys are only used, never logged or put in names.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from hil.net.http import HttpMessage, build_request
from hil.protocol.readings import Readings
from hil.protocol.upload import UploadPacket
from hil.wire.profile import WireProfile

_MISSING = object()


class SigningKeys(Protocol):
    """What signing a packet needs: a device's HMAC key and (for a MAC over decrypted bytes) its AES key
    (``DeviceIdentity``, ``DeviceKeys``)."""

    @property
    def hmac_key(self) -> bytes: ...

    @property
    def aes_key(self) -> bytes: ...


@dataclass(frozen=True)
class Forged:
    """One forged packet and how it was made (``resigned``: MAC recomputed with the real key)."""

    name: str
    packet: UploadPacket
    resigned: bool


def other_device_id(device_id: str) -> str:
    """A valid device id that differs from *device_id* (one character appended or changed)."""
    if len(device_id) < 32:
        return device_id + "X"
    return device_id[:-1] + ("Y" if device_id[-1] == "X" else "X")


@dataclass(frozen=True)
class Forger:
    """Builds and mutates upload packets the way *wire*'s format defines them."""

    wire: WireProfile

    def resign(self, packet: UploadPacket, key: SigningKeys | None) -> UploadPacket:
        """*packet* with its MAC recomputed under *key*; unchanged when *key* is ``None`` or when the
        payload cannot be unwrapped far enough to compute a MAC (a MAC over decrypted bytes)."""
        if key is None:
            return packet
        mac = self.wire.codec.expected_mac(packet, hmac_key=key.hmac_key, aes_key=key.aes_key)
        return packet if mac is None else replace(packet, mac=mac)

    @staticmethod
    def flip_mac(packet: UploadPacket, index: int = 0, xor: int = 0x01) -> UploadPacket:
        """MAC with byte *index* (0..31) XOR *xor*: a MAC that is well-formed but wrong."""
        mac = bytearray(bytes.fromhex(packet.mac))
        mac[index] ^= xor
        return replace(packet, mac=mac.hex())

    def with_nonce(self, packet: UploadPacket, nonce: int, *, key: SigningKeys | None = None) -> UploadPacket:
        """Another nonce (0 .. the profile's maximum; use :meth:`body` for out-of-range values)."""
        if not 0 <= nonce <= self.wire.nonce.maximum:
            raise ValueError(
                f"nonce {nonce} is outside 0..{self.wire.nonce.maximum}; build the body with body(nonce=...)"
            )
        return self.resign(replace(packet, nonce=nonce), key)

    def flip_payload(
        self, packet: UploadPacket, index: int = 0, xor: int = 0x01, *, key: SigningKeys | None = None
    ) -> UploadPacket:
        """Payload with decoded byte *index* XOR *xor*, re-encoded: still valid base64, different content."""
        raw = bytearray(base64.b64decode(packet.payload))
        raw[index] ^= xor
        return self.resign(replace(packet, payload=base64.b64encode(bytes(raw)).decode("ascii")), key)

    def with_device_id(self, packet: UploadPacket, device_id: str, *, key: SigningKeys | None = None) -> UploadPacket:
        """Another device id (the MAC does not cover it: *key* is the other device's key, if any)."""
        return self.resign(replace(packet, device_id=device_id), key)

    def with_flags(self, packet: UploadPacket, *, key: SigningKeys | None = None, **flags: Any) -> UploadPacket:
        """Flags outside the MAC changed (``compressed=``, ``encrypted=``, ``compression_type=``): a
        server must not trust them to skip a check."""
        return self.resign(replace(packet, **flags), key)

    def craft(
        self,
        device_id: str,
        nonce: int,
        plaintext: bytes | Readings,
        *,
        key: SigningKeys | None,
        compressed: bool | None = None,
        encrypt: bool = False,
    ) -> UploadPacket:
        """An upload from scratch: *plaintext* (Readings are serialised as the format's device does,
        bytes are used as given), compressed as the format's device does unless *compressed* says
        otherwise, AES-encrypted under *key* if *encrypt*; MAC under *key*, else zeros. With *key* and
        Readings it equals what the format's device sends."""
        body = plaintext if isinstance(plaintext, bytes) else self.wire.codec.encode_plaintext(plaintext)
        if encrypt and key is None:
            raise ValueError("encrypt needs the device's keys")
        return self.wire.codec.seal(
            device_id,
            nonce,
            body,
            hmac_key=key.hmac_key if key is not None else None,
            aes_key=key.aes_key if encrypt and key is not None else None,
            compressed=self.wire.compresses if compressed is None else compressed,
            timestamp=None if isinstance(plaintext, bytes) else plaintext.timestamp,
        )

    def body(self, packet: UploadPacket | dict[str, Any], *, remove: tuple[str, ...] = (), **fields: Any) -> bytes:
        """The JSON body with *fields* overridden (any JSON value, ``None`` → null) and *remove* left out."""
        return self.wire.body(packet, remove=remove, **fields)

    def request(self, body: bytes | UploadPacket, *, host: str, path: str | None = None) -> HttpMessage:
        """An HTTP/1.1 request of *body* as the format's device sends it (to the packet's upload path,
        or *path*; a raw body goes to the profile's default device's path unless *path* is given)."""
        if isinstance(body, UploadPacket):
            raw, target = self.wire.body(body), path or self.wire.upload_path(body.device_id)
        else:
            raw, target = body, path or self.wire.upload_path(self.wire.default_device_id)
        return build_request(
            self.wire.upload_method, target, raw, host=host, headers={"Content-Type": self.wire.content_type}
        )

    def mutations(self, packet: UploadPacket, *, key: SigningKeys | None) -> list[Forged]:
        """The standard table of forgeries of *packet*: each MAC'd-field change without and (if *key*)
        with the MAC recomputed, the device id and every flag outside the MAC, plus MAC byte flips.
        Names are stable identifiers for test ids."""
        variants: list[tuple[str, Callable[[SigningKeys | None], UploadPacket]]] = [
            ("nonce-old", lambda k: self.with_nonce(packet, packet.nonce - 1, key=k)),
            ("nonce-equal", lambda k: self.resign(packet, k)),
            ("nonce-huge", lambda k: self.with_nonce(packet, self.wire.nonce.maximum, key=k)),
            ("payload-byte", lambda k: self.flip_payload(packet, key=k)),
            ("payload-last-byte", lambda k: self.flip_payload(packet, -1, key=k)),
            ("device-id", lambda k: self.with_device_id(packet, other_device_id(packet.device_id), key=k)),
        ]
        variants += [(f"flags-{name}", change) for name, change in self._flag_changes(packet)]
        out = [Forged(f"mac-byte-{i}", self.flip_mac(packet, i), False) for i in (0, 31)]
        for name, make in variants:
            out.append(Forged(f"{name}-keep-mac", make(None), False))
            if key is not None:
                out.append(Forged(f"{name}-resigned", make(key), True))
        return out

    def _flag_changes(self, packet: UploadPacket) -> list[tuple[str, Callable[[SigningKeys | None], UploadPacket]]]:
        changes: list[tuple[str, Callable[[SigningKeys | None], UploadPacket]]] = []
        if "compressed" in self.wire.flags:
            if packet.compressed:
                changes.append(
                    ("uncompressed", lambda k: self.with_flags(packet, compressed=False, compression_type=None, key=k))
                )
            else:
                changes.append(("compressed", lambda k: self.with_flags(packet, compressed=True, key=k)))
        if "encrypted" in self.wire.flags:
            changes.append(("encrypted", lambda k: self.with_flags(packet, encrypted=not packet.encrypted, key=k)))
        return changes
