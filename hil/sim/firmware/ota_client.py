"""The device's side of the FOTA wire protocol (PROTOCOL.md "Firmware over the air"): the update
check, the manifest, chunk downloads and status reports, over one kept-alive connection per update
(:class:`hil.sim.firmware.net.HttpSession`).

Everything the server sends is untrusted input and is validated field by field
(:mod:`hil.sim.firmware.ota_fields`): a malformed reply is an :class:`OtaReplyError` naming what is
wrong, never a crash. :class:`UpdateServerLink` is the connection every OTA wire format's client
is built on (the ``ecowatt-fw134`` one is :mod:`hil.sim.firmware.ota_fw134`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import quote

from hil.sim.firmware import net
from hil.sim.firmware.device import Device
from hil.sim.firmware.ota_fields import (
    OtaReplyError,
    field_of,
    hex_field,
    int_field,
    json_object,
    parse_version,
    version_field,
)

__all__ = ["OtaReplyError", "parse_version"]  # re-exported: the OTA modules' names for them

TAG = "ota"
CHECK_PATH = "/api/ota/check/{device_id}?version={version}"
DOWNLOAD_PATH = "/api/ota/download/{version}/{chunk}"
STATUS_PATH = "/api/ota/status"
AES_BLOCK = 16
MAX_CHUNK_SIZE = 8192  # the firmware's download buffer
MAX_SIGNATURE_BYTES = 512  # RSA-4096 at most
_URL_PATH = re.compile(r"/[A-Za-z0-9._~/%-]{1,200}")

# error_code values of a status report (PROTOCOL.md)
SIGNATURE_INVALID = "SIGNATURE_INVALID"
HASH_MISMATCH = "HASH_MISMATCH"
DOWNGRADE_REFUSED = "DOWNGRADE_REFUSED"
DOWNLOAD_FAILED = "DOWNLOAD_FAILED"
BOOT_FAILED = "BOOT_FAILED"
NOT_PROVISIONED = "device not provisioned with device_id/server_url"

# The steps of an update after the download, in order (each wire format reports those it has).
UpdatePhase = Literal["download_complete", "verifying", "verification_success", "installing"]


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


def _json(reply: net.HttpReply, what: str) -> dict[str, Any]:
    if not reply.ok:
        raise OtaReplyError(f"{what}: HTTP {reply.status} {reply.error_code()}")
    return json_object(reply.body, what)


def parse_offer(reply: net.HttpReply, *, checked: bool = True) -> Offer | None:
    """The check reply: an :class:`Offer`, or ``None`` when no update is available (``checked``:
    see :func:`version_field`)."""
    doc = _json(reply, "check reply")
    if field_of(doc, "update_available", bool) is False:
        return None
    url = field_of(doc, "manifest_url", str)
    if not _URL_PATH.fullmatch(url) or url.startswith("//") or "/../" in url:
        raise OtaReplyError("field 'manifest_url' is not a path on the update server")
    version = version_field(doc, "firmware_version", checked=checked)
    return Offer(version, int_field(doc, "file_size", 1, 0xFFFFFFFF), url)


def parse_manifest(reply: net.HttpReply, *, checked: bool = True) -> Manifest:
    """Validate a manifest reply; :class:`OtaReplyError` names the first bad field."""
    doc = _json(reply, "manifest")
    manifest = Manifest(
        version=version_field(doc, "version", checked=checked),
        file_size=int_field(doc, "file_size", 1, 0xFFFFFFFF),
        chunk_size=int_field(doc, "chunk_size", AES_BLOCK, MAX_CHUNK_SIZE),
        total_chunks=int_field(doc, "total_chunks", 1, 0xFFFFFFFF),
        sha256=hex_field(doc, "sha256_hash", 32, 32),
        signature=hex_field(doc, "rsa_signature", 1, MAX_SIGNATURE_BYTES),
        iv=hex_field(doc, "aes_iv", AES_BLOCK, AES_BLOCK),
    )
    expected = -(-manifest.cipher_size // manifest.chunk_size)
    if manifest.total_chunks != expected:
        raise OtaReplyError(
            f"total_chunks {manifest.total_chunks} does not match file_size {manifest.file_size} "
            f"in chunks of {manifest.chunk_size} ({expected})"
        )
    return manifest


_Link = TypeVar("_Link", bound="UpdateServerLink")


class UpdateServerLink:
    """The device's connection to its update server for one update: one kept-alive connection (an
    ``esp_http_client`` handle reused for every request of the update), TLS verified against the
    provisioned CA, from the board's address, with the board's HTTP timeout. A wire format's client
    subclasses it and sets :attr:`CHECK_PATH`.

    After a failed request the next one opens a new connection (:class:`~hil.sim.firmware.net.HttpSession`);
    a chunk that came wrong (HTTP error, wrong length) also drops the connection, so every retry of
    a chunk starts on a new one. Use as a context manager (or call :meth:`close`): the connection is
    closed however the update ends.
    """

    CHECK_PATH: ClassVar[str]  # the check request, with {device_id} and {version}

    def __init__(self, device: Device, timeout: float = net.DEFAULT_TIMEOUT_S) -> None:
        ident = device.identity
        if ident is None or not ident.server_url:
            raise ValueError(NOT_PROVISIONED)
        self._device = device
        self.endpoint = net.Endpoint.parse(ident.server_url)  # ValueError names a bad URL
        self.session = net.HttpSession(
            self.endpoint,
            ca_pem=ident.ca_cert,
            verify=net.verification(device.rt.defects),
            station=net.station_of(device.rt),
            timeout=timeout,
        )

    def close(self) -> None:
        """Close the connection to the update server (idempotent)."""
        self.session.close()

    def __enter__(self: _Link) -> _Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def versions_checked(self) -> bool:
        """Whether version fields must be ``x.y.z`` (not with ``ota-version-compared-as-text``: labels
        are strings to that firmware)."""
        return "ota-version-compared-as-text" not in self._device.rt.defects

    @property
    def device_id(self) -> str:
        """The device id the requests carry."""
        assert self._device.identity is not None
        return self._device.identity.device_id

    def check_url(self, version: str) -> str:
        """The full URL of the update check (for log lines)."""
        return self.endpoint.url(self._check_path(version))

    def _check_path(self, version: str) -> str:
        return self.CHECK_PATH.format(device_id=quote(self.device_id, safe=""), version=quote(version, safe=""))

    def _post_report(self, path: str, body: bytes, status: str) -> bool:
        """POST a report; a failure is logged (``Status report '<status>' failed``), never raised."""
        try:
            reply = self.session.post_json(path, body)
        except net.NetError as exc:
            reason = exc.reason
        else:
            if reply.ok:
                return True
            reason = f"HTTP {reply.status} {self._refusal(reply)}"
        self._device.log.w(TAG, f"Status report '{status}' failed: {reason}")
        return False

    def _refusal(self, reply: net.HttpReply) -> str:
        """What a log line names of a refusal: the reply's ``error_code`` (PROTOCOL.md)."""
        return reply.error_code()


class OtaClient(UpdateServerLink):
    """The PROTOCOL.md client: check, manifest, ``/api/ota/download`` chunks, ``/api/ota/status`` reports."""

    CHECK_PATH = CHECK_PATH

    def check(self, version: str) -> Offer | None:
        """Ask for an update from ``version``; raises ``net.NetError`` or :class:`OtaReplyError`."""
        return parse_offer(self.session.get(self._check_path(version)), checked=self.versions_checked)

    def manifest(self, offer: Offer) -> Manifest:
        """Fetch and validate the manifest the offer points at."""
        return parse_manifest(self.session.get(offer.manifest_url), checked=self.versions_checked)

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

    def progress(self, version: str, percent: int) -> None:
        """The download reached *percent*: a ``downloading`` report."""
        self.report("downloading", version, progress_percent=percent)

    def phase(self, phase: UpdatePhase, version: str) -> None:
        """A step of the update after the download; PROTOCOL.md reports only ``verifying``."""
        if phase == "verifying":
            self.report("verifying", version)

    def failed(self, version: str, code: str, message: str) -> None:
        """The update failed with *code*: a ``failed`` report."""
        self.report("failed", version, error_code=code, error_message=message)

    def report(self, status: str, version: str, **fields: object) -> bool:
        """POST a status report; a failure is logged (``Status report ... failed``), never raised."""
        doc = {"device_id": self.device_id, "firmware_version": version, "status": status, **fields}
        return self._post_report(STATUS_PATH, json.dumps(doc).encode(), status)
