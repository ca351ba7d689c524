"""The device's OTA update (PROTOCOL.md "Firmware over the air", or the provisioned wire format's:
:mod:`hil.sim.firmware.ota_formats`): the ``ota check`` console command and the periodic check task.

check → refuse a version ≤ the running one (``DOWNGRADE_REFUSED``) → manifest (fw134: initiate) →
erase the secondary slot → download the chunks in order over one kept-alive connection (a failed
chunk is tried up to :data:`MAX_CHUNK_ATTEMPTS` times, each retry on a new connection, resuming at
the chunk that failed), decrypting AES-256-CBC as one stream and writing the plaintext into the slot
as it comes (fw134: the first bytes must be the MCUboot image magic) → SHA-256 of the slot, then the
format's RSA signature over it (PSS; fw134: PKCS#1 v1.5) with the FOTA key the running image carries
→ the version the signed image carries must be the offered one and newer (a relabelled old image is
refused) → record the attempt in NVS, ``boot_set_pending`` (test swap), reboot. Any failure erases the
secondary slot, is logged and reported, and the running image stays. The flow is the same for every
format: only the client (requests, parsing, which reports) and the signature scheme differ.
What happens after the reboot (self-test, confirm, rolled-back report) is :mod:`ota_boot`.

Defects honoured here: ``ota-no-size-check`` (:func:`_install`), ``ota-skip-hash``,
``ota-skip-signature`` (:func:`_verify`), ``ota-accept-downgrade``, ``ota-version-compared-as-text``
(:func:`_refuse_downgrade`),
``ota-trusts-offered-version`` (:func:`_refuse_relabelled`), ``ota-keep-partial-on-failure``
(:func:`_fail`), ``ota-no-resume`` (:func:`_fetch`).
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hil.images import mcuboot as mb
from hil.images.app_desc import find_app_desc
from hil.images.app_keys import find_fota_public_key
from hil.images.layout import layout_for
from hil.sim.firmware import bootctl, net
from hil.sim.firmware.device import Device
from hil.sim.firmware.identity import OtaAttempt
from hil.sim.firmware.ota_client import (
    DOWNGRADE_REFUSED,
    DOWNLOAD_FAILED,
    HASH_MISMATCH,
    NOT_PROVISIONED,
    SIGNATURE_INVALID,
    TAG,
    Manifest,
    Offer,
    OtaReplyError,
    parse_version,
)
from hil.sim.firmware.ota_formats import OtaChannel, OtaFormat, SignatureScheme, format_of
from hil.sim.firmware.timer import PeriodicTask
from hil.sim.firmware.upload_formats import unknown_format_error
from hil.sim.runtime import Reboot, Runtime

FOTA_KEY_BYTES = 32
MAX_CHUNK_ATTEMPTS = 3  # per chunk: first try + 2 retries, each on a new connection
RETRY_DELAY_S = 0.5  # device time between attempts
PROGRESS_STEP = 25  # percent between progress lines/reports
PERIOD_KEY = "ota_period_s"  # NVS u32: seconds between periodic checks (0/absent: none)


class OtaError(Exception):
    """The update failed with a PROTOCOL.md ``error_code``; the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class SecondarySlot:
    """The secondary MCUboot slot, written front to back; never past the trailer area."""

    def __init__(self, rt: Runtime) -> None:
        layout = layout_for(rt.chip.name)
        self._rt, self.offset, self.size = rt, layout.secondary_slot, layout.slot_size
        self.capacity = layout.slot_size - mb.TRAILER_SIZE  # the trailer must stay erased for boot_set_pending
        self.written = 0

    def erase(self) -> None:
        """Erase the whole slot, trailer included (nothing left for MCUboot to find)."""
        self._rt.flash.erase(self.offset, self.size)
        self.written = 0

    def append(self, data: bytes) -> None:
        """Write ``data`` after what is already written."""
        if self.written + len(data) > self.capacity:
            raise OtaError(DOWNLOAD_FAILED, f"image overruns the secondary slot ({self.capacity} bytes)")
        self._rt.flash.write(self.offset + self.written, data)
        self.written += len(data)

    def read(self) -> bytes:
        """What is in the slot now (read back: what MCUboot will swap in)."""
        return self._rt.flash.read(self.offset, self.written)

    def digest(self) -> bytes:
        """SHA-256 of what is in the slot now."""
        return hashlib.sha256(self.read()).digest()


def cmd_ota_check(device: Device, args: list[str]) -> None:
    """Console ``ota check``: check for an update now and install it (reboots on success)."""
    ota_check(device)


def ota_check(device: Device, *, timeout: float = net.DEFAULT_TIMEOUT_S) -> str:
    """One update check. Returns ``"none"`` (nothing newer), ``"error"`` (check impossible) or the
    ``error_code`` of a failed update; an installed update raises ``Reboot`` instead."""
    with device.net_lock:  # the console and the timer task share the slot, NVS and the server
        return _check(device, timeout)


def _check(device: Device, timeout: float) -> str:
    log, rt = device.log, device.rt
    if not bootctl.running_image_confirmed(rt):
        # Its predecessor waits in the secondary slot for a revert: erasing it would leave nothing to go back to.
        log.e(TAG, f"Update check refused: running image {device.version} is not confirmed yet")
        return "error"
    ident = device.identity
    wire = format_of(ident) if ident is not None else None
    try:
        if ident is None:
            raise ValueError(NOT_PROVISIONED)
        if wire is None:
            raise ValueError(unknown_format_error(ident))
        client = wire.open(device, timeout)
    except ValueError as exc:
        log.e(TAG, f"Update check failed: {exc}")
        return "error"
    with client:  # one kept-alive connection for the whole update, closed however it ends (Reboot too)
        return _update(device, wire, client)


def _update(device: Device, wire: OtaFormat, client: OtaChannel) -> str:
    log, rt = device.log, device.rt
    try:
        log.i(TAG, f"Checking for updates at {client.check_url(device.version)}")
        offer = client.check(device.version)
    except net.TlsError as exc:
        log.e("tls", f"TLS handshake failed: {exc.reason}")
        return "error"
    except (ValueError, net.NetError) as exc:  # OtaReplyError is a ValueError
        log.e(TAG, f"Update check failed: {getattr(exc, 'reason', exc)}")
        return "error"
    if offer is None:
        log.i(TAG, f"No update available (running {device.version})")
        return "none"
    log.i(TAG, f"Update available: version {offer.version} ({offer.file_size} bytes)")
    slot = SecondarySlot(rt)
    try:
        _install(device, wire, client, offer, slot)
    except OtaError as exc:
        _fail(device, client, offer.version, slot, exc)
        return exc.code
    raise AssertionError("unreachable: _install ends by Reboot or OtaError")


def _install(device: Device, wire: OtaFormat, client: OtaChannel, offer: Offer, slot: SecondarySlot) -> None:
    _refuse_downgrade(device, offer.version)
    key = _fota_public_key(device)
    ident = device.identity
    assert ident is not None
    if len(ident.fota_key) != FOTA_KEY_BYTES:
        raise OtaError(DOWNLOAD_FAILED, "no 32-byte fota_key provisioned (NVS ecowatt/fota_key)")
    try:
        manifest = client.manifest(offer)
    except (net.NetError, OtaReplyError) as exc:
        raise OtaError(DOWNLOAD_FAILED, f"{wire.prepare_step}: {getattr(exc, 'reason', exc)}") from None
    if manifest.version != offer.version:
        raise OtaError(DOWNLOAD_FAILED, f"manifest is for {manifest.version}, the server offered {offer.version}")
    if manifest.file_size > slot.capacity and "ota-no-size-check" not in device.rt.defects:
        raise OtaError(
            DOWNLOAD_FAILED,
            f"image of {manifest.file_size} bytes does not fit the secondary slot ({slot.capacity} bytes)",
        )
    slot.erase()
    _download(device, client, manifest, slot, ident.fota_key, wire.image_magic)
    client.phase("download_complete", manifest.version)
    client.phase("verifying", manifest.version)
    _verify(device, wire.signature, manifest, slot, key)
    _refuse_relabelled(device, manifest, slot)
    client.phase("verification_success", manifest.version)
    rt = device.rt
    rt.checkpoint("ota.verified")
    client.phase("installing", manifest.version)
    device.store.record_ota_attempt(OtaAttempt(device.version, manifest.version))
    bootctl.request_upgrade(rt)
    device.log.i(TAG, f"Rebooting into {manifest.version} (MCUboot test swap requested)")
    raise Reboot(f"ota update to {manifest.version}")


def _refuse_downgrade(device: Device, offered: str) -> None:
    defects = device.rt.defects
    if "ota-accept-downgrade" in defects:
        return
    if "ota-version-compared-as-text" in defects:  # the defect: strcmp(offered, running) > 0
        newer = offered > device.version
    else:
        running, new = parse_version(device.version), parse_version(offered)
        newer = running is not None and new is not None and new > running
    if not newer:
        device.log.e(TAG, f"Downgrade refused: offered {offered} <= running {device.version}")
        raise OtaError(DOWNGRADE_REFUSED, f"offered version {offered} is not newer than {device.version}")


def _refuse_relabelled(device: Device, manifest: Manifest, slot: SecondarySlot) -> None:
    """The signed image's own version (its ``esp_app_desc_t``, inside what MCUboot's signature covers)
    must be the offered one: hash and signature cover the image, not the server's label for it."""
    defects = device.rt.defects
    if "ota-accept-downgrade" in defects or "ota-trusts-offered-version" in defects:
        return
    data = slot.read()
    try:
        header = mb.parse_header(data)  # the signature MCUboot checks at the swap covers header and payload
        signed = find_app_desc(data[header.hdr_size : header.hdr_size + header.img_size]).version
    except ValueError as exc:  # McubootFormatError is one
        raise OtaError(DOWNLOAD_FAILED, f"cannot read the downloaded image's version: {exc}") from None
    running, image = parse_version(device.version), parse_version(signed)
    if running is None or image is None or image <= running:
        as_offered = f"the image offered as {manifest.version} is signed {signed}"
        device.log.e(TAG, f"Downgrade refused: offered {signed} <= running {device.version} ({as_offered})")
        raise OtaError(DOWNGRADE_REFUSED, f"{as_offered}, not newer than {device.version}")
    if image != parse_version(manifest.version):
        device.log.e(TAG, f"Image version mismatch: offered as {manifest.version}, the signed image is {signed}")
        raise OtaError(DOWNLOAD_FAILED, f"the image offered as {manifest.version} is signed {signed}")


def _fota_public_key(device: Device) -> RSAPublicKey:
    pem = find_fota_public_key(device.booted.app_image)
    if pem is None:
        raise OtaError(SIGNATURE_INVALID, "the running image carries no FOTA public key")
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        key = None
    if not isinstance(key, RSAPublicKey):
        raise OtaError(SIGNATURE_INVALID, "the FOTA public key in the running image is not a usable RSA key")
    return key


class _Decryptor:
    """AES-256-CBC over the whole ciphertext, chunk after chunk, PKCS7 removed at the end."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._cbc = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        self._unpad = padding.PKCS7(algorithms.AES.block_size).unpadder()

    def update(self, data: bytes) -> bytes:
        return self._unpad.update(self._cbc.update(data))

    def finalize(self) -> bytes:
        try:
            return self._unpad.update(self._cbc.finalize()) + self._unpad.finalize()
        except ValueError:
            raise OtaError(
                HASH_MISMATCH, "decrypted image has invalid PKCS7 padding (corrupted chunk or wrong fota_key)"
            ) from None


def _download(
    device: Device, client: OtaChannel, manifest: Manifest, slot: SecondarySlot, fota_key: bytes, magic: bytes
) -> None:
    stream = _Decryptor(fota_key, manifest.iv)
    total = manifest.total_chunks
    _progress(device, client, manifest.version, 0, 0, total)
    next_step = PROGRESS_STEP
    for chunk in range(total):
        plain = stream.update(_fetch(device, client, manifest, chunk))
        if chunk == total - 1:
            plain += stream.finalize()
        if chunk == 0 and not plain.startswith(magic):  # what this format's images must open with
            device.log.e(TAG, f"Decrypted image does not start with {magic.hex()}: {plain[: len(magic)].hex()}")
            raise OtaError(HASH_MISMATCH, "decrypted image is not an image (corrupted chunk or wrong fota_key)")
        slot.append(plain)
        device.rt.checkpoint("ota.chunk_written", chunk=chunk)
        percent = (chunk + 1) * 100 // total
        if percent >= next_step:
            _progress(device, client, manifest.version, percent, chunk + 1, total)
            next_step = (percent // PROGRESS_STEP + 1) * PROGRESS_STEP


def _progress(device: Device, client: OtaChannel, version: str, percent: int, done: int, total: int) -> None:
    device.log.i(TAG, f"Download progress {percent}% (chunk {done}/{total})")
    client.progress(version, percent)


def _fetch(device: Device, client: OtaChannel, manifest: Manifest, chunk: int) -> bytes:
    """One chunk, retried on a new connection after a drop, short read, timeout or HTTP error (the
    client closes the kept-alive connection on any failed chunk)."""
    log, rt = device.log, device.rt
    attempts = 1 if "ota-no-resume" in rt.defects else MAX_CHUNK_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return client.chunk(manifest, chunk)
        except net.NetError as exc:
            reason = exc.reason
        if attempt < attempts:
            log.w(TAG, f"Chunk {chunk} failed: {reason}")
            log.w(TAG, f"Retrying chunk {chunk} (attempt {attempt + 1}/{attempts})")
            rt.wait(RETRY_DELAY_S)
    log.e(TAG, f"Download failed at chunk {chunk}: {reason}")
    raise OtaError(DOWNLOAD_FAILED, f"chunk {chunk}: {reason} ({attempts} attempt{'s' * (attempts > 1)})")


def _verify(
    device: Device, scheme: SignatureScheme, manifest: Manifest, slot: SecondarySlot, key: RSAPublicKey
) -> None:
    """SHA-256 of the plaintext against the manifest, then the format's RSA signature over that digest."""
    log, defects = device.log, device.rt.defects
    digest = slot.digest()
    if slot.written != manifest.file_size:
        log.e(TAG, f"Image size mismatch: {slot.written} bytes decrypted, manifest says {manifest.file_size}")
        raise OtaError(HASH_MISMATCH, f"decrypted {slot.written} bytes, manifest file_size {manifest.file_size}")
    hash_ok = "ota-skip-hash" in defects or hmac.compare_digest(digest, manifest.sha256)
    if not hash_ok:
        log.e(TAG, f"SHA-256 mismatch: image {digest.hex()[:16]}..., manifest {manifest.sha256.hex()[:16]}...")
        raise OtaError(HASH_MISMATCH, "SHA-256 of the image does not match the manifest")
    if "ota-skip-signature" not in defects:
        try:
            key.verify(manifest.signature, digest, scheme.padding, Prehashed(hashes.SHA256()))
        except InvalidSignature:
            log.e(TAG, f"Signature invalid: {scheme.name} verification with the FOTA key failed")
            raise OtaError(
                SIGNATURE_INVALID, f"{scheme.name} signature does not verify with the FOTA public key"
            ) from None
    skipped = [
        what
        for what, defect in (("SHA-256", "ota-skip-hash"), ("signature", "ota-skip-signature"))
        if defect in defects
    ]
    if skipped:  # the log never claims a check that did not run
        log.w(TAG, f"Image accepted without checking: {', '.join(skipped)}")
    else:
        log.i(TAG, f"Image verified (SHA-256 OK, {scheme.name} signature OK)")


def _fail(device: Device, client: OtaChannel, version: str, slot: SecondarySlot, error: OtaError) -> None:
    if "ota-keep-partial-on-failure" not in device.rt.defects:
        slot.erase()
    device.log.e(TAG, f"Update to {version} failed ({error.code}): {error.message}")
    client.failed(version, error.code, error.message)


class OtaTimer(PeriodicTask):
    """The periodic update check: every ``ota_period_s`` seconds one :func:`ota_check`."""

    def __init__(self, device: Device, period_s: float) -> None:
        super().__init__(device, period_s, ota_check, name="ota-timer", tag=TAG, what="update check")

    @classmethod
    def from_nvs(cls, device: Device) -> OtaTimer:
        """A timer with the provisioned period (disabled when 0, absent or unprovisioned)."""
        return cls(device, device.store.setting_u32(PERIOD_KEY) if device.identity is not None else 0)
