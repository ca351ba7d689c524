"""The device's side of the FOTA wire protocol (PROTOCOL.md "Firmware over the air"): the update
check, the manifest, chunk downloads and status reports, over one kept-alive connection per update
(:class:`hil.sim.firmware.net.HttpSession`).

Everything the server sends is untrusted input and is validated field by field, as the C firmware
does with cJSON: a malformed reply is an :class:`OtaReplyError` naming what is wrong, never a crash.
The firmware has its own parser on purpose — it must not share the packager's code it is checking.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hil.protocol.errors import ProtocolError
from hil.protocol.jsonio import load_json_object
from hil.sim.firmware import net
from hil.sim.firmware.device import Device

TAG = "ota"
CHECK_PATH = "/api/ota/check/{device_id}?version={version}"
DOWNLOAD_PATH = "/api/ota/download/{version}/{chunk}"
STATUS_PATH = "/api/ota/status"
AES_BLOCK = 16
MAX_CHUNK_SIZE = 8192  # the firmware's download buffer
MAX_SIGNATURE_BYTES = 512  # RSA-4096 at most
_VERSION = re.compile(r"(\d{1,5})\.(\d{1,5})\.(\d{1,5})")
_HEX = re.compile(r"[0-9a-fA-F]*")
_URL_PATH = re.compile(r"/[A-Za-z0-9._~/%-]{1,200}")

# error_code values of a status report (PROTOCOL.md)
SIGNATURE_INVALID = "SIGNATURE_INVALID"
HASH_MISMATCH = "HASH_MISMATCH"
DOWNGRADE_REFUSED = "DOWNGRADE_REFUSED"
DOWNLOAD_FAILED = "DOWNLOAD_FAILED"
BOOT_FAILED = "BOOT_FAILED"


class OtaReplyError(ValueError):
    """A server reply the firmware cannot use (HTTP error, malformed JSON, a field out of range)."""


def parse_version(text: object) -> tuple[int, int, int] | None:
    """``"x.y.z"`` as a tuple of integers (compared numerically), ``None`` if it is not one."""
    match = _VERSION.fullmatch(text) if isinstance(text, str) else None
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


@dataclass(frozen=True)
class Offer:
    """What the check endpoint offers."""

    version: str
    file_size: int
    manifest_url: str


@dataclass(frozen=True)
class Manifest:
    """A validated manifest. ``sha256``, ``signature`` and ``iv`` are raw bytes."""

    version: str
    file_size: int
    chunk_size: int
    total_chunks: int
    sha256: bytes
    signature: bytes
    iv: bytes

    @property
    def cipher_size(self) -> int:
        """Bytes of AES-CBC ciphertext: PKCS7 always pads, by 1 to 16 bytes."""
        return (self.file_size // AES_BLOCK + 1) * AES_BLOCK

    def chunk_length(self, chunk: int) -> int:
        """The exact size chunk ``chunk`` must have (the last one is shorter)."""
        return min(self.chunk_size, self.cipher_size - chunk * self.chunk_size)


def _field(doc: dict[str, Any], name: str, kind: type) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):  # JSON true is no number
        raise OtaReplyError(f"field {name!r} missing or not a {kind.__name__}")
    return value


def _int(doc: dict[str, Any], name: str, low: int, high: int) -> int:
    value = _field(doc, name, int)
    if not low <= value <= high:
        raise OtaReplyError(f"field {name!r} = {value} is outside {low}..{high}")
    return value


def _version(doc: dict[str, Any], name: str) -> str:
    value = _field(doc, name, str)
    if parse_version(value) is None:
        raise OtaReplyError(f"field {name!r} is not an x.y.z version")
    return value


def _hex(doc: dict[str, Any], name: str, low: int, high: int) -> bytes:
    value = _field(doc, name, str)
    if not _HEX.fullmatch(value) or len(value) % 2 or not low <= len(value) // 2 <= high:
        size = f"{low}" if low == high else f"{low}..{high}"
        raise OtaReplyError(f"field {name!r} is not {size} bytes of hex")
    return bytes.fromhex(value)


def _json(reply: net.HttpReply, what: str) -> dict[str, Any]:
    if not reply.ok:
        raise OtaReplyError(f"{what}: HTTP {reply.status} {reply.error_code()}")
    try:
        return load_json_object(reply.body, what=what)
    except ProtocolError as exc:
        raise OtaReplyError(exc.message) from None


def parse_offer(reply: net.HttpReply) -> Offer | None:
    """The check reply: an :class:`Offer`, or ``None`` when no update is available."""
    doc = _json(reply, "check reply")
    if _field(doc, "update_available", bool) is False:
        return None
    url = _field(doc, "manifest_url", str)
    if not _URL_PATH.fullmatch(url) or url.startswith("//") or "/../" in url:
        raise OtaReplyError("field 'manifest_url' is not a path on the update server")
    return Offer(_version(doc, "firmware_version"), _int(doc, "file_size", 1, 0xFFFFFFFF), url)


def parse_manifest(reply: net.HttpReply) -> Manifest:
    """Validate a manifest reply; :class:`OtaReplyError` names the first bad field."""
    doc = _json(reply, "manifest")
    manifest = Manifest(
        version=_version(doc, "version"),
        file_size=_int(doc, "file_size", 1, 0xFFFFFFFF),
        chunk_size=_int(doc, "chunk_size", AES_BLOCK, MAX_CHUNK_SIZE),
        total_chunks=_int(doc, "total_chunks", 1, 0xFFFFFFFF),
        sha256=_hex(doc, "sha256_hash", 32, 32),
        signature=_hex(doc, "rsa_signature", 1, MAX_SIGNATURE_BYTES),
        iv=_hex(doc, "aes_iv", AES_BLOCK, AES_BLOCK),
    )
    expected = -(-manifest.cipher_size // manifest.chunk_size)
    if manifest.total_chunks != expected:
        raise OtaReplyError(
            f"total_chunks {manifest.total_chunks} does not match file_size {manifest.file_size} "
            f"in chunks of {manifest.chunk_size} ({expected})"
        )
    return manifest


class OtaClient:
    """The device's client of its update server for one update: one kept-alive connection (an
    ``esp_http_client`` handle reused for check, manifest, chunks and reports), TLS verified against
    the provisioned CA, from the board's address, with the board's HTTP timeout.

    After a failed request the next one opens a new connection (:class:`~hil.sim.firmware.net.HttpSession`);
    a chunk that came wrong (HTTP error, wrong length) also drops the connection, so every retry of
    a chunk starts on a new one. Use as a context manager (or call :meth:`close`): the connection is
    closed however the update ends.
    """

    def __init__(self, device: Device, timeout: float = net.DEFAULT_TIMEOUT_S) -> None:
        ident = device.identity
        if ident is None or not ident.server_url:
            raise ValueError("device not provisioned with device_id/server_url")
        self._device = device
        self.endpoint = net.Endpoint.parse(ident.server_url)  # ValueError names a bad URL
        self.session = net.HttpSession(
            self.endpoint,
            ca_pem=ident.ca_cert,
            verify="tls-no-verify" not in device.rt.defects,
            station=net.station_of(device.rt),
            timeout=timeout,
        )

    def close(self) -> None:
        """Close the connection to the update server (idempotent)."""
        self.session.close()

    def __enter__(self) -> OtaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def device_id(self) -> str:
        """The device id the requests carry."""
        assert self._device.identity is not None
        return self._device.identity.device_id

    def check_url(self, version: str) -> str:
        """The full URL of the update check (for log lines)."""
        return self.endpoint.url(self._check_path(version))

    def _check_path(self, version: str) -> str:
        return CHECK_PATH.format(device_id=quote(self.device_id, safe=""), version=quote(version, safe=""))

    def check(self, version: str) -> Offer | None:
        """Ask for an update from ``version``; raises ``net.NetError`` or :class:`OtaReplyError`."""
        return parse_offer(self.session.get(self._check_path(version)))

    def manifest(self, offer: Offer) -> Manifest:
        """Fetch and validate the manifest the offer points at."""
        return parse_manifest(self.session.get(offer.manifest_url))

    def chunk(self, manifest: Manifest, chunk: int) -> bytes:
        """Chunk ``chunk`` of the ciphertext, exactly as long as the manifest says it must be.
        Raises ``net.NetError`` when it does not come complete; the connection is closed then, so a
        retry goes out on a new one."""
        path = DOWNLOAD_PATH.format(version=quote(manifest.version, safe=""), chunk=chunk)
        want = manifest.chunk_length(chunk)
        reply = self.session.get(path, max_bytes=want + 1)
        if reply.ok and len(reply.body) == want:
            return reply.body
        self.session.close()
        if not reply.ok:
            raise net.NetError(f"HTTP {reply.status} {reply.error_code()}")
        raise net.NetError(f"got {len(reply.body)} bytes, expected {want}")

    def report(self, status: str, version: str, **fields: object) -> bool:
        """POST a status report; a failure is logged (``Status report ... failed``), never raised."""
        doc = {"device_id": self.device_id, "firmware_version": version, "status": status, **fields}
        try:
            reply = self.session.post_json(STATUS_PATH, json.dumps(doc).encode())
        except net.NetError as exc:
            reason = exc.reason
        else:
            if reply.ok:
                return True
            reason = f"HTTP {reply.status} {reply.error_code()}"
        self._device.log.w(TAG, f"Status report '{status}' failed: {reason}")
        return False
