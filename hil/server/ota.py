"""OTA blueprint (PROTOCOL.md "Firmware over the air"): check, manifest, chunk download, status reports,
with the admin API's faults applied (see :mod:`hil.server.ota_faults`).

Packages are loaded once at app creation from ``ServerConfig.firmware_dir`` (``<dir>/<version>/``);
a broken package stops the server from starting. Every refused OTA request is a security event.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Response, current_app, jsonify, request

from hil.images.fota import (
    FotaFormatError,
    FotaPackage,
    chunk_count,
    load_packages,
    padded_size,
    parse_version,
    sign_plaintext,
)
from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.jsonio import load_json_object
from hil.protocol.readings import valid_device_id
from hil.server import ota_faults as faults
from hil.server.config import ServerConfig
from hil.server.keepalive import CLOSE_CONNECTION
from hil.server.state import reject, server_state

bp = Blueprint("ota", __name__, url_prefix="/api/ota")
OTA_EXTENSION_KEY = "hil.server.ota"
log = logging.getLogger("hil.server.ota")
P = TypeVar("P")  # a package as one OTA format serves it

STATUSES = ("downloading", "verifying", "success", "failed", "rolled_back")
STATUS_ERROR_CODES = ("SIGNATURE_INVALID", "HASH_MISMATCH", "DOWNGRADE_REFUSED", "DOWNLOAD_FAILED", "BOOT_FAILED")
MAX_STATUS_BODY = 4096
MAX_ERROR_MESSAGE = 500


@dataclass
class OtaState:
    """The packages one app serves and the key its ``wrong_signing_key`` fault signs with.

    Without ``attacker_key`` a throwaway RSA-2048 key is generated on first use (per app, never
    stored): any key but the trusted FOTA key makes the point.
    """

    packages: dict[str, FotaPackage]
    attacker_key_path: Path | None = None
    _attacker: rsa.RSAPrivateKey | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def attacker_key(self) -> rsa.RSAPrivateKey:
        """The untrusted signing key (loaded or generated once)."""
        with self._lock:
            if self._attacker is None:
                self._attacker = _load_attacker(self.attacker_key_path)
            return self._attacker


def _load_attacker(path: Path | None) -> rsa.RSAPrivateKey:
    if path is None:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"attacker key {path} is not an RSA private key")
    return key


def load_ota_state(config: ServerConfig) -> OtaState:
    """Load ``config.firmware_dir`` (none: nothing to offer); FotaFormatError names a broken package."""
    packages = {} if config.firmware_dir is None else load_packages(config.firmware_dir)
    if config.attacker_key is not None and not Path(config.attacker_key).is_file():
        raise FotaFormatError(
            f"attacker key {config.attacker_key} not found (--attacker-key): "
            "use firmware_builds/keys/attacker-key.pem or omit it"
        )
    if packages:
        log.info("OTA packages from %s: %s", config.firmware_dir, ", ".join(sorted(packages, key=parse_version)))
    return OtaState(packages, config.attacker_key)


def ota_state() -> OtaState:
    """The :class:`OtaState` of the app handling the current request."""
    return current_app.extensions[OTA_EXTENSION_KEY]


def active_faults(names: tuple[str, ...]) -> list[faults.Fault]:
    """The active, well-formed faults called one of *names*."""
    return faults.known_faults(server_state().storage.active_faults(), names)


def known_device(device_id: str) -> Response | None:
    """A rejection for an unusable device id, or None."""
    if not valid_device_id(device_id):
        return reject(
            ErrorCode.INVALID_PAYLOAD,
            "device_id must be 1-32 chars of [A-Za-z0-9_-]",
            device_id=None,
            detail=f"{request.method} {request.path[:100]}: malformed device_id",
        )
    if device_id not in server_state().config.devices:
        return reject(
            ErrorCode.DEVICE_NOT_FOUND,
            f"device {device_id} is not registered",
            device_id=device_id,
            detail=f"{request.method} {request.path[:100]}",
        )
    return None


def checked_version(device_id: str) -> tuple[str, tuple[int, int, int]] | Response:
    """A check request's ``?version=`` of a registered *device_id*: (as given, parsed), or the refusal."""
    refusal = known_device(device_id)
    if refusal is not None:
        return refusal
    current = request.args.get("version", "")
    try:
        return current, parse_version(current)
    except FotaFormatError as exc:
        return reject(ErrorCode.INVALID_PAYLOAD, f"query parameter version: {exc}", device_id=device_id)


@bp.get("/check/<device_id>")
def check(device_id: str) -> Response:
    """``?version=V`` → the highest package newer than V (or what ``offer_version`` forces)."""
    checked = checked_version(device_id)
    if isinstance(checked, Response):
        return checked
    current, _ = checked
    packages = served_packages(ota_state().packages, _relabel)
    offered = offered_version(packages, current, device_id=device_id)
    if offered is None:
        return jsonify({"update_available": False, "current_version": current})
    return jsonify(
        {
            "update_available": True,
            "firmware_version": offered,
            "file_size": claimed_size(packages[offered].manifest.file_size),
            "manifest_url": f"/api/ota/manifest/{offered}",
        }
    )


def claimed_size(file_size: int) -> int:
    """The image size the check and the manifest state: the true one, or what ``claim_size`` says."""
    for fault in active_faults(faults.SIZE_FAULTS):
        log.info("OTA fault claim_size: %d bytes claimed for an image of %d", fault.params["bytes"], file_size)
        return int(fault.params["bytes"])
    return file_size


def served_packages(packages: Mapping[str, P], relabel: Callable[[P, str], P]) -> dict[str, P]:
    """*packages* as the active ``relabel_version`` faults serve them: each adds the package of its
    ``version`` under its ``label`` (*relabel* makes that copy: same image, hash and signature)."""
    served = dict(packages)
    for fault in active_faults(faults.RELABEL_FAULTS):
        version, label = fault.params["version"], fault.params["label"]
        if version in packages:
            served[label] = relabel(packages[version], label)
        else:
            have = ", ".join(packages) or "none"
            log.warning("OTA fault relabel_version %r: no such package (have %s)", version[:40], have)
    return served


def offered_version(packages: Mapping[str, object], current: str, *, device_id: str) -> str | None:
    """The version a check from *device_id* running *current* (a valid ``x.y.z``) is offered: the
    ``offer_version`` fault's or the ``relabel_version`` fault's label (even an older one), else the
    highest newer package, else None. *packages* are :func:`served_packages`."""
    offered = None
    for fault in active_faults(faults.CHECK_FAULTS):
        forced = fault.params["label"] if fault.name == "relabel_version" else fault.params["version"]
        if forced in packages:
            offered = forced
            log.info("OTA fault %s: offering %s to %s (running %s)", fault.name, offered[:40], device_id, current)
        elif fault.name == "offer_version":  # relabel_version's missing package is logged where it is served
            log.warning(
                "OTA fault offer_version %r: no such package (have %s)",
                forced[:40],
                ", ".join(packages) or "none",
            )
    if offered is None:
        if "ota-newest-by-text" in server_state().defects:  # the defect: strings compared, not numbers
            newer = [v for v in packages if v > current]
            return max(newer) if newer else None
        running = parse_version(current)
        newer = [v for v in packages if parse_version(v) > running]  # no fault forced an offer: no labels here
        offered = max(newer, key=parse_version) if newer else None
    return offered


def _relabel(package: FotaPackage, label: str) -> FotaPackage:
    return replace(package, manifest=replace(package.manifest, version=label))


def _package(version: str, code: ErrorCode) -> FotaPackage | Response:
    package = served_packages(ota_state().packages, _relabel).get(version)
    if package is None:
        return reject(
            code,
            f"no firmware {version[:40]!r} on this server",
            device_id=None,
            detail=f"{request.method} {request.path[:100]}",
        )
    return package


@bp.get("/manifest/<version>")
def manifest(version: str) -> Response:
    """The manifest of ``version``, with the manifest faults applied."""
    package = _package(version, ErrorCode.VERSION_NOT_FOUND)
    if isinstance(package, Response):
        return package
    doc = package.manifest.to_dict()
    digest, signature = signed_fields_under_faults(
        version,
        doc["sha256_hash"],
        bytes.fromhex(doc["rsa_signature"]),
        sign_digest=lambda digest, key: sign_plaintext(digest, key, prehashed=True),
    )
    doc["sha256_hash"], doc["rsa_signature"] = digest, signature.hex()
    claimed = claimed_size(doc["file_size"])
    if claimed != doc["file_size"]:  # a consistent claim: the chunk count follows the size
        doc["file_size"], doc["total_chunks"] = claimed, chunk_count(padded_size(claimed), doc["chunk_size"])
    return jsonify(doc)


def signed_fields_under_faults(
    version: str, sha256_hash: str, signature: bytes, *, sign_digest: Callable[[bytes, rsa.RSAPrivateKey], bytes]
) -> tuple[str, bytes]:
    """(sha256 hex, signature) of *version* as the active manifest faults make them; *sign_digest*
    is the format's signature scheme over a digest (``wrong_signing_key`` signs the true digest)."""
    true_digest = bytes.fromhex(sha256_hash)
    for fault in active_faults(faults.MANIFEST_FAULTS):
        log.info("OTA fault %s on the manifest of %s", fault.name, version)
        if fault.name == "wrong_signing_key":
            # Signed over the true digest: only the key is wrong, the signature is well formed.
            signature = sign_digest(true_digest, ota_state().attacker_key())
        elif fault.name == "bad_signature":
            signature = bytes.fromhex(faults.flip_signature(signature.hex()))
        elif fault.name == "bad_hash":
            sha256_hash = faults.other_digest(sha256_hash)
    return sha256_hash, signature


@bp.get("/download/<version>/<n>")
def download(version: str, n: str) -> Response:
    """Chunk ``n`` of ``version``'s ciphertext (octet-stream), with the chunk faults applied."""
    package = _package(version, ErrorCode.CHUNK_NOT_FOUND)
    if isinstance(package, Response):
        return package
    index = int(n) if n.isascii() and n.isdigit() and len(n) <= 9 else -1
    if not 0 <= index < package.manifest.total_chunks:
        return reject(
            ErrorCode.CHUNK_NOT_FOUND,
            f"firmware {version} has chunks 0..{package.manifest.total_chunks - 1}",
            device_id=None,
            detail=f"GET {request.path[:100]}",
        )
    data, drop = chunk_under_faults(package.chunk(index), index, version)
    if drop:
        return dropped_response(data)
    return Response(data, mimetype="application/octet-stream")


def chunk_under_faults(data: bytes, index: int, version: str) -> tuple[bytes, bool]:
    """(chunk *index* of *version* as the active chunk faults make it, whether to drop the connection
    while sending it). A delay is waited here; a drop is consumed (``times``) here."""
    drop = False
    for fault in faults.for_chunk(active_faults(faults.CHUNK_FAULTS), index):
        log.info("OTA fault %s on chunk %d of %s", fault.name, index, version)
        if fault.name == "delay_chunk":
            threading.Event().wait(fault.params["ms"] / 1000)  # the injected delay itself, not a synchronisation
        elif fault.name == "drop_connection":
            drop = drop or server_state().storage.consume_fault(fault.id)
        elif fault.name == "corrupt_chunk":
            data = faults.corrupt(data)
        elif fault.name == "truncate_chunk":
            data = faults.truncate(data, fault.params)
    return data, drop


def dropped_response(data: bytes, mimetype: str = "application/octet-stream") -> Response:
    """A response whose Content-Length promises ``data`` but which sends half and shuts the TCP
    connection, so the client sees a connection error / IncompleteRead, never a clean 200. The
    server then closes that connection (no ``Connection: close`` announces it: a drop is a surprise)."""
    sock: socket.socket | None = request.environ.get("werkzeug.socket")
    request.environ[CLOSE_CONNECTION] = True

    def body() -> Iterator[bytes]:
        yield data[: len(data) // 2]
        if sock is not None:  # the test client has no socket: it just sees the short body
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client already went away: the connection is down either way

    response = Response(body(), mimetype=mimetype, direct_passthrough=True)
    response.headers["Content-Length"] = str(len(data))
    return response


@bp.post("/status")
def status() -> Response:
    """Store one device status report (validated; 400 INVALID_PAYLOAD / 404 DEVICE_NOT_FOUND)."""
    body = request.stream.read(MAX_STATUS_BODY + 1)  # bounded read: chunked bodies have no Content-Length
    if len(body) > MAX_STATUS_BODY:
        return reject(ErrorCode.PAYLOAD_TOO_LARGE, f"status body exceeds {MAX_STATUS_BODY} bytes", device_id=None)
    try:
        doc = load_json_object(body, what="OTA status body")
    except ProtocolError as exc:
        return reject(exc.code, exc.message, device_id=None)
    try:
        report = parse_status(doc)
    except ProtocolError as exc:
        claimed = doc.get("device_id")
        return reject(exc.code, exc.message, device_id=claimed if valid_device_id(claimed) else None)
    refusal = known_device(report["device_id"])
    if refusal is not None:
        return refusal
    server_state().storage.record_ota_status(device_id=report["device_id"], peer=request.remote_addr, report=report)
    log.info(
        "OTA status from %s: %s %s %s",
        report["device_id"],
        report["firmware_version"],
        report["status"],
        report.get("error_code") or "",
    )
    return jsonify({"status": "success"})


def _bad(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_PAYLOAD, message)


def _optional_version(doc: dict[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is None:
        return None
    try:
        parse_version(value)
    except FotaFormatError:
        raise _bad(f"{name} must be a version x.y.z or null") from None
    return value


def parse_status(doc: dict[str, Any]) -> dict[str, Any]:
    """Validate a status report; ProtocolError(INVALID_PAYLOAD) names the field. Unknown fields are dropped."""
    if not valid_device_id(doc.get("device_id")):
        raise _bad("device_id must be 1-32 chars of [A-Za-z0-9_-]")
    version = _optional_version(doc, "firmware_version")
    if version is None:
        raise _bad("firmware_version must be a version x.y.z")
    if doc.get("status") not in STATUSES:
        raise _bad(f"status must be one of {', '.join(STATUSES)}")
    progress = doc.get("progress_percent")
    if progress is not None and (
        isinstance(progress, bool) or not isinstance(progress, (int, float)) or not 0 <= progress <= 100
    ):
        raise _bad("progress_percent must be a number 0..100 or null")
    code = doc.get("error_code")
    if code is not None and code not in STATUS_ERROR_CODES:
        raise _bad(f"error_code must be one of {', '.join(STATUS_ERROR_CODES)} or null")
    if doc["status"] == "failed" and code is None:
        raise _bad("a failed status needs an error_code")
    message = doc.get("error_message")
    if message is not None and (not isinstance(message, str) or len(message) > MAX_ERROR_MESSAGE):
        raise _bad(f"error_message must be a string of at most {MAX_ERROR_MESSAGE} chars or null")
    return {
        "device_id": doc["device_id"],
        "firmware_version": version,
        "status": doc["status"],
        "progress_percent": progress,
        "error_code": code,
        "error_message": message,
        "old_version": _optional_version(doc, "old_version"),
        "rolled_back_to": _optional_version(doc, "rolled_back_to"),
    }
