"""What the app does at start-up about an OTA update it booted into or out of.

* A test image MCUboot just swapped in (primary image_ok unset) runs its self-test — the update
  server answers the check endpoint, the HMAC and FOTA keys are provisioned, the application's own
  check passes (an image whose project name is ``SELFTEST_FAIL_PROJECT`` fails it) — and only then
  confirms itself and reports ``success``. A failed self-test is logged and the image is left
  unconfirmed: MCUboot reverts it at the next reset (the app does not reboot by itself).
* The old app booting again with an attempt for another version recorded in NVS was reverted: it
  reports ``rolled_back``. Either way the NVS record is cleared once settled.

Check and reports go in the provisioned wire format (:mod:`hil.sim.firmware.ota_formats`; fw134:
``GET /ota/status`` then ``POST /ota/<id>/complete``).

Defects honoured here: ``ota-confirm-before-selftest`` and ``nonce-reset-on-update`` (:func:`_settle_test_image`).
"""

from __future__ import annotations

from hil.images.variants import SELFTEST_FAIL_PROJECT
from hil.protocol.upload import HMAC_KEY_BYTES
from hil.sim.firmware import bootctl, net
from hil.sim.firmware.device import Device
from hil.sim.firmware.identity import OtaAttempt
from hil.sim.firmware.ota import FOTA_KEY_BYTES
from hil.sim.firmware.ota_client import BOOT_FAILED, NOT_PROVISIONED, TAG
from hil.sim.firmware.ota_formats import OtaChannel, format_of
from hil.sim.firmware.upload_formats import unknown_format_error


def check_update_outcome(device: Device) -> None:
    """Settle a pending update at start-up: self-test and confirm a test image, or report a revert."""
    attempt = device.store.ota_attempt()
    if not bootctl.running_image_confirmed(device.rt):
        _settle_test_image(device, attempt)
    elif attempt is not None and attempt.to_version == device.version:
        _report(device, "success", attempt.to_version, old_version=attempt.from_version)  # confirmed before a cut
        device.store.clear_ota_attempt()
    elif attempt is not None:
        device.log.w(TAG, f"Update to {attempt.to_version} was rolled back; running {device.version}")
        _report(
            device,
            "rolled_back",
            attempt.to_version,
            rolled_back_to=device.version,
            error_code=BOOT_FAILED,
            error_message=f"{attempt.to_version} was not confirmed; MCUboot reverted to {device.version}",
        )
        device.store.clear_ota_attempt()


def _settle_test_image(device: Device, attempt: OtaAttempt | None) -> None:
    log, rt = device.log, device.rt
    if "ota-confirm-before-selftest" in rt.defects:
        _confirm(device)
    failure = self_test(device)
    if failure is not None:
        log.e(TAG, f"Self-test failed: {failure}")
        if not bootctl.running_image_confirmed(rt):
            log.w(TAG, f"Image {device.version} left unconfirmed: MCUboot reverts it at the next reset")
        _report(device, "failed", device.version, error_code=BOOT_FAILED, error_message=f"self-test failed: {failure}")
        return
    log.i(TAG, "Self-test passed (server reachable, keys present)")
    rt.checkpoint("ota.selftest_passed")
    _confirm(device)
    if "nonce-reset-on-update" in rt.defects:  # the new version's settings migration, counter not carried over
        device.commit_nonce(0)
    if attempt is not None:
        _report(device, "success", device.version, old_version=attempt.from_version)
        device.store.clear_ota_attempt()


def _confirm(device: Device) -> None:
    if bootctl.confirm_running_image(device.rt):
        device.log.i(TAG, f"Firmware {device.version} confirmed (image_ok set)")


def self_test(device: Device) -> str | None:
    """Why the running image is not fit to keep, or ``None`` when it passes."""
    ident = device.identity
    if ident is None:
        return "no device identity provisioned"
    if len(ident.hmac_key) != HMAC_KEY_BYTES or len(ident.fota_key) != FOTA_KEY_BYTES:
        return "hmac_key/fota_key not provisioned"
    if device.desc.project_name == SELFTEST_FAIL_PROJECT:
        return f"application check failed (project {device.desc.project_name})"
    try:
        with _channel(device) as client:
            client.check(device.version)
    except (ValueError, net.NetError) as exc:  # OtaReplyError is a ValueError
        return f"update server unreachable: {getattr(exc, 'reason', exc)}"
    return None


def _channel(device: Device) -> OtaChannel:
    """A client of the update server in the provisioned wire format; ``ValueError`` says why there is none."""
    if device.identity is None:
        raise ValueError(NOT_PROVISIONED)
    wire = format_of(device.identity)
    if wire is None:
        raise ValueError(unknown_format_error(device.identity))
    return wire.open(device, net.DEFAULT_TIMEOUT_S)


def _report(device: Device, status: str, version: str, **fields: object) -> None:
    try:
        client = _channel(device)
    except ValueError as exc:  # unprovisioned: nobody to tell
        device.log.w(TAG, f"Status report '{status}' failed: {exc}")
        return
    with client:
        client.report(status, version, **fields)
