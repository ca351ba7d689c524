"""The device's upload cycle (PROTOCOL.md "Upload"): the ``upload`` console command and the
periodic upload timer.

One cycle: sample the registers → nonce = last + 1, **committed to NVS before sending** → the
packet of the provisioned wire format (:mod:`hil.sim.firmware.upload_formats`: PROTOCOL.md's
``build_packet`` or the fw134 envelope) → POST over HTTP or HTTPS (CA from NVS). A connection
failure or a 5xx is retried up to :data:`MAX_ATTEMPTS` times in all, each retry with a new nonce
committed first. A 4xx (the server refused the packet) and a TLS failure (the server is not who it
claims to be) are final for this cycle.

NVS settings besides the identity (namespace ``ecowatt``): ``encrypt`` (u8, 1 = AES on) and
``upload_period_s`` (u32, 0 or absent = no timer).

Defects honoured here (``hil.sim.defects``): ``nonce-not-persisted`` (:func:`_store_nonce`),
``nonce-reused-on-retry`` and ``upload-retry-storm`` (:func:`upload_cycle`), ``nonce-wraps-at-max``
(:func:`_next_nonce`), ``mac-over-payload-only`` (the format's builder),
``https-downgrade-to-http`` and ``hmac-key-in-url`` (:func:`_send`), ``encrypt-flag-ignored``
(:func:`_packet`); the TLS check's defects (``tls-no-verify``, ``tls-hostname-not-checked``) in
:func:`hil.sim.firmware.net.verification`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from hil.images import nvs
from hil.images.layout import layout_for
from hil.protocol.errors import ProtocolError
from hil.protocol.readings import Readings
from hil.protocol.upload import AES_KEY_BYTES, HMAC_KEY_BYTES, NONCE_MAX
from hil.sim.firmware import net
from hil.sim.firmware.device import Device
from hil.sim.firmware.identity import NAMESPACE
from hil.sim.firmware.sensors import sample_readings
from hil.sim.firmware.timer import PeriodicTask
from hil.sim.firmware.upload_formats import OutgoingUpload, UploadFormat, format_of, unknown_format_error
from hil.sim.runtime import Runtime

MAX_ATTEMPTS = 3  # first try + 2 retries (wire profile ecowatt-api: [device] upload_attempts)
RETRY_DELAY_S = 1.0  # device time between attempts ([device] upload_retry_delay_s)
STORM_ATTEMPTS = 12  # under ``upload-retry-storm``: retried at once, this many attempts in all
TAG = "upload"


@dataclass(frozen=True)
class UploadSettings:
    """The upload options provisioned in NVS."""

    encrypt: bool = False
    period_s: int = 0

    @classmethod
    def load(cls, rt: Runtime) -> UploadSettings:
        """Read ``ecowatt/encrypt`` and ``ecowatt/upload_period_s`` from the NVS partition."""
        layout = layout_for(rt.chip.name)
        image = nvs.parse(rt.flash.read(layout.nvs, layout.nvs_size))
        encrypt, period = image.get(NAMESPACE, "encrypt"), image.get(NAMESPACE, "upload_period_s")
        return cls(encrypt=encrypt == 1, period_s=period if isinstance(period, int) else 0)


def cmd_upload(device: Device, args: list[str]) -> None:
    """Console ``upload``: one upload cycle now."""
    upload_cycle(device)


def upload_cycle(device: Device) -> bool:
    """Sample, then send with retries; True when the server accepted the readings."""
    with device.net_lock:  # the console and the timer task share NVS and the nonce
        return _cycle(device)


def _cycle(device: Device) -> bool:
    log, rt, ident = device.log, device.rt, device.identity
    if ident is None or not ident.server_url or len(ident.hmac_key) != HMAC_KEY_BYTES:
        log.e(TAG, "Upload failed: device not provisioned with device_id/hmac_key/server_url")
        return False
    try:
        endpoint = net.Endpoint.parse(ident.server_url)
    except ValueError as exc:
        log.e(TAG, f"Upload failed: {exc}")
        return False
    wire = format_of(ident)
    if wire is None:
        log.e(TAG, f"Upload failed: {unknown_format_error(ident)}")
        return False
    settings = UploadSettings.load(rt)
    if settings.encrypt and wire.needs_aes_key and len(ident.aes_key) != AES_KEY_BYTES:
        log.e(TAG, "Upload failed: encrypt is on but no 16-byte aes_key is provisioned")
        return False
    readings = None
    nonce = None
    attempts, delay = (STORM_ATTEMPTS, 0.0) if "upload-retry-storm" in rt.defects else (MAX_ATTEMPTS, RETRY_DELAY_S)
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            log.w(TAG, f"Retrying upload (attempt {attempt}/{attempts})")
            rt.wait(delay)
        if nonce is None or "nonce-reused-on-retry" not in rt.defects:
            nonce = _next_nonce(device)
            if nonce is None:
                return False
        if readings is None:  # one sample per cycle; retries resend it under their own nonce
            readings = sample_readings(ident.device_id, nonce, int(time.time()))
        try:
            packet = _packet(device, wire, settings, readings, nonce)
        except ProtocolError as exc:
            log.e(TAG, f"Upload failed: cannot encode the readings as {wire.name}: {exc}, nonce {nonce}")
            return False
        outcome = _send(device, endpoint, packet, len(readings.readings))
        if outcome != "retry":
            return outcome == "ok"
    log.e(TAG, f"Upload gave up after {attempts} attempts")
    return False


def _next_nonce(device: Device) -> int | None:
    """The next nonce, committed to NVS before anything is sent (a reset never reuses it)."""
    assert device.identity is not None
    nonce = device.identity.nonce + 1
    if nonce > NONCE_MAX and "nonce-wraps-at-max" in device.rt.defects:
        nonce = 0  # the defect: a u32 counter that overflows, so the next packets replay old nonces
    if nonce > NONCE_MAX:
        device.log.e("security", f"Nonce space exhausted at {device.identity.nonce}; reprovision the device")
        return None
    if _store_nonce(device, nonce):
        device.log.i("security", f"Nonce {nonce} committed to NVS")
    # Fires under the defect too: it marks the point after the commit step, before sending.
    device.rt.checkpoint("upload.nonce_committed", nonce=nonce)
    return nonce


def _store_nonce(device: Device, nonce: int) -> bool:
    """Make *nonce* the device's nonce; True when it reached NVS (not under ``nonce-not-persisted``)."""
    assert device.identity is not None
    if "nonce-not-persisted" in device.rt.defects:
        device.identity = dataclasses.replace(device.identity, nonce=nonce)  # RAM only
        return False
    device.commit_nonce(nonce)
    return True


def raise_boot_nonce(device: Device) -> None:
    """At start-up: a stored nonce below the wire format's boot floor becomes the floor (fw134 firmware
    does this before its first upload), stored the way every nonce is."""
    ident = device.identity
    wire = format_of(ident) if ident is not None else None
    if ident is not None and wire is not None and ident.nonce < wire.boot_nonce_floor:
        _store_nonce(device, wire.boot_nonce_floor)


def _packet(
    device: Device, wire: UploadFormat, settings: UploadSettings, readings: Readings, nonce: int
) -> OutgoingUpload:
    assert device.identity is not None
    encrypt = settings.encrypt and "encrypt-flag-ignored" not in device.rt.defects
    return wire.build(device.identity, readings, nonce, encrypt, device.rt.defects)


def _send(device: Device, endpoint: net.Endpoint, packet: OutgoingUpload, count: int) -> str:
    """POST one packet and log the outcome: ``"ok"``, ``"retry"`` or ``"final"``."""
    log, rt, ident = device.log, device.rt, device.identity
    assert ident is not None
    body = packet.body
    log.i(
        TAG,
        f"Sending {count} readings ({len(body)} bytes, "
        f"{'encrypted' if packet.encrypted else 'plain'}) to {endpoint.url(packet.path)}, nonce {packet.nonce}",
    )

    path = packet.path
    if "hmac-key-in-url" in rt.defects:  # the defect: a development-time parameter never removed
        path += f"?debug_key={ident.hmac_key.hex()}"

    def post(to: net.Endpoint) -> net.HttpReply:
        return net.post_json(
            to,
            path,
            body,
            ca_pem=ident.ca_cert,
            verify=net.verification(rt.defects),
            station=net.station_of(rt),
            on_sent=lambda: rt.checkpoint("upload.sent", nonce=packet.nonce),
        )

    try:
        try:
            reply = post(endpoint)
        except net.TlsError as exc:
            log.e("tls", f"TLS handshake failed: {exc.reason}")
            if "https-downgrade-to-http" not in rt.defects:
                return "final"
            log.w(TAG, "Falling back to plain HTTP")  # the defect: same host and port, no TLS
            reply = post(dataclasses.replace(endpoint, scheme="http"))
    except net.NetError as exc:
        log.e(TAG, f"Upload failed: {exc.reason}, nonce {packet.nonce}")
        return "retry"
    if reply.ok:
        log.i(TAG, f"Upload successful (HTTP {reply.status}), nonce {packet.nonce}, {count} readings")
        return "ok"
    log.e(TAG, f"Upload rejected (HTTP {reply.status} {reply.refusal()}), nonce {packet.nonce}")
    return "retry" if reply.status >= 500 else "final"


class UploadTimer(PeriodicTask):
    """The periodic upload task: every ``upload_period_s`` seconds one :func:`upload_cycle`."""

    def __init__(self, device: Device, period_s: float) -> None:
        super().__init__(device, period_s, upload_cycle, name="upload-timer", tag=TAG, what="upload")

    @classmethod
    def from_nvs(cls, device: Device) -> UploadTimer:
        """A timer with the provisioned period (disabled when 0, absent or unprovisioned)."""
        period = UploadSettings.load(device.rt).period_s if device.identity is not None else 0
        return cls(device, period)
