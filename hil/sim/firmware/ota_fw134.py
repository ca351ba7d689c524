"""The device's side of the ``ecowatt-fw134`` OTA protocol (``ecowatt-fw134-wire.md``, "Firmware over
the air"): what the public EcoWatt firmware 1.3.4 sends and accepts, over one kept-alive connection.

``GET /ota/check/<id>?version=<current>`` (the offer and the image's facts in ``update_info``) →
``POST /ota/initiate/<id>`` → ``GET /ota/chunk/<id>?version=<v>&chunk=<n>`` (base64 ciphertext in
JSON) → ``POST /ota/<id>/progress`` per phase; after the update reboot ``GET /ota/status`` then
``POST /ota/<id>/complete``. The update flow itself (downgrade refusal, retries, decryption,
verification, install) is the one every format shares (:mod:`hil.sim.firmware.ota`); the signature
is RSASSA-PKCS1-v1_5 over the image's SHA-256 (:data:`hil.sim.firmware.ota_formats.FORMATS`).

Documented deviation from the public firmware: its plaintext is a bare ESP-IDF app image, checked by
its first byte 0xE9 and written with the Arduino ``Update`` API; the virtual board's plaintext is the
same MCUboot-signed image the ``ecowatt-api`` profile ships (its boot chain installs MCUboot images),
so the first-bytes check is the MCUboot image magic instead.

The server's text-to-code mapping reads a failure's ``message``: it starts with the phrase of the
error code (:data:`FAILURE_PHRASES`: "hash mismatch", "signature invalid", "downgrade refused",
"download failed"). Every reply is validated field by field (:mod:`hil.sim.firmware.ota_fields`).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import quote

from hil.sim.firmware import net
from hil.sim.firmware.device import Device
from hil.sim.firmware.ota_client import (
    AES_BLOCK,
    DOWNGRADE_REFUSED,
    DOWNLOAD_FAILED,
    HASH_MISMATCH,
    MAX_CHUNK_SIZE,
    MAX_SIGNATURE_BYTES,
    SIGNATURE_INVALID,
    TAG,
    Manifest,
    Offer,
    UpdatePhase,
    UpdateServerLink,
)
from hil.sim.firmware.ota_fields import (
    OtaReplyError,
    base64_field,
    field_of,
    hex_field,
    int_field,
    json_object,
    version_field,
)

CHECK_PATH = "/ota/check/{device_id}?version={version}"
INITIATE_PATH = "/ota/initiate/{device_id}"
CHUNK_PATH = "/ota/chunk/{device_id}?version={version}&chunk={chunk}"
PROGRESS_PATH = "/ota/{device_id}/progress"
STATUS_PATH = "/ota/status"
COMPLETE_PATH = "/ota/{device_id}/complete"
MAX_SIZE = 0xFFFFFFFF
_SESSION_ID = re.compile(r"[\x20-\x7e]{1,128}")

# The failure report: its phase and the phrase its message starts with, per error code.
FAILURE_PHRASES = {
    HASH_MISMATCH: "hash mismatch",
    SIGNATURE_INVALID: "signature invalid",
    DOWNGRADE_REFUSED: "downgrade refused",
    DOWNLOAD_FAILED: "download failed",
}
VERIFICATION_CODES = frozenset({HASH_MISMATCH, SIGNATURE_INVALID})  # reported as verification_failed
# What a progress report of each step after the download says (neutral words: no failure phrase).
PHASE_MESSAGES: dict[str, str] = {
    "download_complete": "Download complete: {version}",
    "verifying": "Verifying {version}",
    "verification_success": "Image {version} verified",
    "installing": "Installing {version}: rebooting into the test image",
}


def _reply(reply: net.HttpReply, device_id: str, what: str = "") -> dict[str, Any]:
    """A 2xx JSON object with ``success`` true for *device_id*; :class:`OtaReplyError` otherwise, its
    text prefixed by *what* (empty where the caller names the step itself)."""

    def refused(text: str) -> OtaReplyError:
        return OtaReplyError(f"{what}: {text}" if what else text)

    if not reply.ok:
        raise refused(f"HTTP {reply.status} {reply.refusal()}")
    doc = json_object(reply.body, what or "reply")
    if field_of(doc, "success", bool) is not True:
        raise refused("field 'success' is false")
    if field_of(doc, "device_id", str) != device_id:
        raise refused("field 'device_id' names another device")
    return doc


def parse_check(reply: net.HttpReply, device_id: str, *, checked: bool = True) -> tuple[Offer, Manifest] | None:
    """The check reply: the offer and its ``update_info`` as a manifest, ``None`` when no update
    (``checked``: see :func:`version_field`)."""
    doc = _reply(reply, device_id, "check reply")
    if field_of(doc, "update_available", bool) is False:
        return None
    info = field_of(doc, "update_info", dict)
    version_field(info, "current_version", checked=checked)
    field_of(info, "release_notes", str)
    size = int_field(info, "firmware_size", 1, MAX_SIZE)
    manifest = Manifest(
        version=version_field(info, "latest_version", checked=checked),
        file_size=size,
        chunk_size=int_field(info, "chunk_size", AES_BLOCK, MAX_CHUNK_SIZE),
        total_chunks=int_field(info, "total_chunks", 1, MAX_SIZE),
        sha256=hex_field(info, "sha256_hash", 32, 32),
        signature=base64_field(info, "signature", 1, MAX_SIGNATURE_BYTES),
        iv=base64_field(info, "iv", AES_BLOCK, AES_BLOCK),
    )
    original, encrypted = int_field(info, "original_size", 1, MAX_SIZE), int_field(info, "encrypted_size", 1, MAX_SIZE)
    if original != size or encrypted != manifest.cipher_size:
        raise OtaReplyError(
            f"update_info sizes disagree: original_size {original}, firmware_size {size}, encrypted_size "
            f"{encrypted} (AES-CBC of {size} bytes is {manifest.cipher_size})"
        )
    expected = -(-encrypted // manifest.chunk_size)
    if manifest.total_chunks != expected:
        raise OtaReplyError(
            f"total_chunks {manifest.total_chunks} does not match encrypted_size {encrypted} "
            f"in chunks of {manifest.chunk_size} ({expected})"
        )
    return Offer(manifest.version, size, INITIATE_PATH.format(device_id=quote(device_id, safe=""))), manifest


def parse_chunk(reply: net.HttpReply, device_id: str, chunk: int, want: int) -> bytes:
    """Chunk *chunk*'s ciphertext out of its reply: index, size and base64 all consistent, *want* bytes."""
    doc = _reply(reply, device_id)
    index = int_field(doc, "chunk_index", 0, MAX_SIZE)
    if index != chunk:
        raise OtaReplyError(f"reply carries chunk_index {index}")
    data = base64_field(doc, "chunk_data", 1, MAX_CHUNK_SIZE)
    size = int_field(doc, "chunk_size", 1, MAX_CHUNK_SIZE)
    if size != len(data) or size != want:
        raise OtaReplyError(f"got {len(data)} bytes (chunk_size {size}), expected {want}")
    return data


def failure_report(code: str, message: str) -> tuple[str, str]:
    """The phase and message of the report of a failure with *code* (see :data:`FAILURE_PHRASES`)."""
    phase = "verification_failed" if code in VERIFICATION_CODES else "failed"
    return phase, f"{FAILURE_PHRASES.get(code, FAILURE_PHRASES[DOWNLOAD_FAILED])}: {message}"


class Fw134Client(UpdateServerLink):
    """The ``ecowatt-fw134`` client for one update (the check's ``update_info`` is the manifest)."""

    CHECK_PATH = CHECK_PATH

    def __init__(self, device: Device, timeout: float = net.DEFAULT_TIMEOUT_S) -> None:
        super().__init__(device, timeout)
        self._offered: dict[str, Manifest] = {}  # update_info per offered version, for the download
        self._percent = 0  # the download's progress so far (what later reports carry)

    def _refusal(self, reply: net.HttpReply) -> str:
        return reply.refusal()  # fw134 refusals carry free text, no error_code

    @property
    def _device_path(self) -> str:
        return quote(self.device_id, safe="")

    def check(self, version: str) -> Offer | None:
        """Ask for an update from ``version``; raises ``net.NetError`` or :class:`OtaReplyError`."""
        reply = self.session.get(self._check_path(version))
        offered = parse_check(reply, self.device_id, checked=self.versions_checked)
        if offered is None:
            return None
        offer, manifest = offered
        self._offered[offer.version] = manifest
        return offer

    def manifest(self, offer: Offer) -> Manifest:
        """``POST /ota/initiate``: opens the download session; the manifest is the check's ``update_info``."""
        manifest = self._offered.get(offer.version)
        if manifest is None:
            raise OtaReplyError(f"no update_info was offered for {offer.version}")
        body = _compact({"firmware_version": offer.version})
        doc = _reply(self.session.post_json(offer.manifest_url, body), self.device_id)
        if not _SESSION_ID.fullmatch(field_of(doc, "session_id", str)):
            raise OtaReplyError("field 'session_id' is not 1..128 printable characters")
        return manifest

    def chunk(self, manifest: Manifest, chunk: int) -> bytes:
        """Chunk ``chunk`` of the ciphertext, decoded and exactly as long as it must be; anything else
        closes the connection (a retry goes out on a new one) and raises ``net.NetError``."""
        path = CHUNK_PATH.format(device_id=self._device_path, version=quote(manifest.version, safe=""), chunk=chunk)
        reply = self.session.get(path)
        try:
            return parse_chunk(reply, self.device_id, chunk, manifest.chunk_length(chunk))
        except OtaReplyError as exc:
            self.session.close()
            raise net.NetError(str(exc)) from None

    def progress(self, version: str, percent: int) -> None:
        """The download reached *percent*: a ``downloading`` report."""
        self._percent = percent
        self._progress("downloading", percent, f"Downloading {version}: {percent}%")

    def phase(self, phase: UpdatePhase, version: str) -> None:
        """A step after the download, reported as its own phase."""
        self._progress(phase, 100, PHASE_MESSAGES[phase].format(version=version))

    def failed(self, version: str, code: str, message: str) -> None:
        """The update failed with *code*: ``verification_failed`` or ``failed``, the code's phrase first."""
        phase, text = failure_report(code, message)
        self._progress(phase, self._percent, text)

    def _progress(self, phase: str, percent: int, message: str) -> bool:
        doc = {"phase": phase, "progress": percent, "message": message, "timestamp": int(time.time())}
        return self._post_report(PROGRESS_PATH.format(device_id=self._device_path), _compact(doc), phase)

    def report(self, status: str, version: str, **fields: object) -> bool:
        """After the update reboot: ``GET /ota/status``, then the ``complete`` report of *status*
        (``success``, ``rolled_back`` or ``failed``; ``error_message`` travels as ``error_msg``)."""
        try:
            reply = self.session.get(STATUS_PATH)
        except net.NetError as exc:
            self._device.log.w(TAG, f"Update status query failed: {exc.reason}")
        else:
            if not reply.ok:
                self._device.log.w(TAG, f"Update status query failed: HTTP {reply.status} {reply.refusal()}")
        doc: dict[str, object] = {"version": version, "status": status, "timestamp": int(time.time())}
        if isinstance(fields.get("error_message"), str):
            doc["error_msg"] = fields["error_message"]
        return self._post_report(COMPLETE_PATH.format(device_id=self._device_path), _compact(doc), status)


def _compact(doc: dict[str, object]) -> bytes:
    """JSON as the firmware's ArduinoJson serialises it (compact, keys in insertion order)."""
    return json.dumps(doc, separators=(",", ":")).encode()
