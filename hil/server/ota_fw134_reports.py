"""``ecowatt-fw134`` OTA reports (``POST /ota/<id>/progress`` and ``/complete``) validated and
normalised to the ``ecowatt-api`` status report, so the OTA assertions read both formats alike.

A normalised report has the api fields (``device_id``, ``firmware_version``, ``status``,
``progress_percent``, ``error_code``, ``error_message``, ``old_version``, ``rolled_back_to``) plus
``fw134_phase``: the progress phase, or ``complete:<status>``. The mapping is the two tables below;
where fw134 has no error code, the code is read from the report's message text (first rule wins,
case-insensitive; the device side words its messages to match).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hil.images.fota import FotaFormatError, parse_version
from hil.protocol.errors import ErrorCode, ProtocolError
from hil.server.ota import MAX_ERROR_MESSAGE


@dataclass(frozen=True)
class Normalised:
    """What one fw134 phase or complete status becomes: an api ``status`` and its ``error_code``
    (fixed, or read from the message text when ``code_from_message``)."""

    status: str
    error_code: str | None = None
    code_from_message: bool = False


PHASES: dict[str, Normalised] = {
    "downloading": Normalised("downloading"),
    "download_complete": Normalised("downloading"),
    "verifying": Normalised("verifying"),
    "verification_success": Normalised("verifying"),
    "installing": Normalised("verifying"),
    "verification_failed": Normalised("failed", code_from_message=True),
    "failed": Normalised("failed", code_from_message=True),
}
COMPLETE_STATUSES: dict[str, Normalised] = {
    "success": Normalised("success"),
    "pending_verify": Normalised("success"),
    "rolled_back": Normalised("rolled_back", "BOOT_FAILED"),
    "failed": Normalised("failed", "BOOT_FAILED"),  # sent after the update reboot: the new image failed there
}
MESSAGE_CODES: tuple[tuple[str, str], ...] = (  # (text the message contains, error_code), first match
    ("hash", "HASH_MISMATCH"),
    ("mismatch", "HASH_MISMATCH"),
    ("signature", "SIGNATURE_INVALID"),
    ("downgrade", "DOWNGRADE_REFUSED"),
)
UNCLASSIFIED_FAILURE = "DOWNLOAD_FAILED"


def code_of_message(message: str | None) -> str:
    """The api ``error_code`` a failure message states (:data:`MESSAGE_CODES`, else DOWNLOAD_FAILED)."""
    text = (message or "").lower()
    return next((code for needle, code in MESSAGE_CODES if needle in text), UNCLASSIFIED_FAILURE)


def progress_report(doc: dict[str, Any], *, device_id: str, version: str) -> dict[str, Any]:
    """A progress body ``{"phase","progress","message"?,"timestamp"?}`` of *device_id*'s update to
    *version*, normalised; ProtocolError(INVALID_PAYLOAD) names the bad field."""
    phase = doc.get("phase")
    if phase not in PHASES:
        raise _bad(f"phase must be one of {', '.join(PHASES)}")
    progress = doc.get("progress")
    if isinstance(progress, bool) or not isinstance(progress, (int, float)) or not 0 <= progress <= 100:
        raise _bad("progress must be a number 0..100")
    _check_timestamp(doc)
    message = _optional_text(doc, "message")
    return _normalised(PHASES[phase], phase, device_id, version, progress, message)


def complete_report(doc: dict[str, Any], *, device_id: str) -> dict[str, Any]:
    """A complete body ``{"version","status","timestamp"?,"error_msg"?}`` of *device_id*, normalised;
    ProtocolError(INVALID_PAYLOAD) names the bad field."""
    version = doc.get("version")
    try:
        parse_version(version)
    except FotaFormatError:
        raise _bad("version must be a version x.y.z") from None
    status = doc.get("status")
    if status not in COMPLETE_STATUSES:
        raise _bad(f"status must be one of {', '.join(COMPLETE_STATUSES)}")
    _check_timestamp(doc)
    message = _optional_text(doc, "error_msg")
    return _normalised(COMPLETE_STATUSES[status], f"complete:{status}", device_id, str(version), None, message)


def _normalised(
    rule: Normalised, phase: str, device_id: str, version: str, progress: float | None, message: str | None
) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "firmware_version": version,
        "status": rule.status,
        "progress_percent": progress,
        "error_code": code_of_message(message) if rule.code_from_message else rule.error_code,
        "error_message": message,
        "old_version": None,
        "rolled_back_to": None,
        "fw134_phase": phase,
    }


def _bad(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_PAYLOAD, message)


def _optional_text(doc: dict[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > MAX_ERROR_MESSAGE):
        raise _bad(f"{name} must be a string of at most {MAX_ERROR_MESSAGE} chars or null")
    return value


def _check_timestamp(doc: dict[str, Any]) -> None:
    value = doc.get("timestamp")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf
    ):
        raise _bad("timestamp must be a non-negative number or null")
