"""The firmware's validators for the JSON its update server sends (every OTA wire format uses them).

Everything the server sends is untrusted input and is validated field by field, as the C firmware
does with cJSON: a bad field is an :class:`OtaReplyError` naming it, never another exception. The
firmware has its own parser on purpose — it must not share the packager's code it is checking.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from hil.protocol.errors import ProtocolError
from hil.protocol.jsonio import load_json_object

_VERSION = re.compile(r"(\d{1,5})\.(\d{1,5})\.(\d{1,5})")
# MCUboot's image_version: major and minor are one byte each, the revision two (the build number is not in labels)
VERSION_LIMITS = (0xFF, 0xFF, 0xFFFF)
MAX_LABEL = 31  # esp_app_desc_t.version is char[32]
_HEX = re.compile(r"[0-9a-fA-F]*")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class OtaReplyError(ValueError):
    """A server reply the firmware cannot use (HTTP error, malformed JSON, a field out of range)."""


def parse_version(text: object) -> tuple[int, int, int] | None:
    """``"x.y.z"`` as a tuple of integers (compared numerically), ``None`` if it is not one or a
    component does not fit the MCUboot image header's field (:data:`VERSION_LIMITS`): no signed
    image can carry such a version, so it cannot be ordered against one."""
    match = _VERSION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    parts = (int(match[1]), int(match[2]), int(match[3]))
    return parts if all(part <= limit for part, limit in zip(parts, VERSION_LIMITS, strict=True)) else None


def field_of(doc: dict[str, Any], name: str, kind: type) -> Any:
    """``doc[name]`` if it is a *kind* (a JSON ``true`` is no ``int``), else :class:`OtaReplyError`."""
    value = doc.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):  # JSON true is no number
        raise OtaReplyError(f"field {name!r} missing or not a {kind.__name__}")
    return value


def int_field(doc: dict[str, Any], name: str, low: int, high: int) -> int:
    """An integer field within ``low..high``."""
    value = field_of(doc, name, int)
    if not low <= value <= high:
        raise OtaReplyError(f"field {name!r} = {value} is outside {low}..{high}")
    return value


def version_field(doc: dict[str, Any], name: str, *, checked: bool = True) -> str:
    """An ``x.y.z`` version field (:func:`parse_version`); ``checked=False`` (the
    ``ota-version-compared-as-text`` defect) takes any label up to :data:`MAX_LABEL` characters."""
    value = field_of(doc, name, str)
    if not checked:
        if not 0 < len(value) <= MAX_LABEL:
            raise OtaReplyError(f"field {name!r} is not a version label of 1..{MAX_LABEL} characters")
        return value
    if parse_version(value) is None:
        raise OtaReplyError(f"field {name!r} is not an x.y.z version")
    return value


def _size(low: int, high: int) -> str:
    return f"{low}" if low == high else f"{low}..{high}"


def hex_field(doc: dict[str, Any], name: str, low: int, high: int) -> bytes:
    """A hex string field of ``low..high`` bytes, decoded."""
    value = field_of(doc, name, str)
    if not _HEX.fullmatch(value) or len(value) % 2 or not low <= len(value) // 2 <= high:
        raise OtaReplyError(f"field {name!r} is not {_size(low, high)} bytes of hex")
    return bytes.fromhex(value)


def base64_field(doc: dict[str, Any], name: str, low: int, high: int) -> bytes:
    """A standard base64 field (padding required, no whitespace) of ``low..high`` decoded bytes."""
    value = field_of(doc, name, str)
    try:
        data = base64.b64decode(value, validate=True) if _BASE64.fullmatch(value) else None
    except binascii.Error:
        data = None
    if data is None or not low <= len(data) <= high:
        raise OtaReplyError(f"field {name!r} is not {_size(low, high)} bytes of base64")
    return data


def json_object(body: bytes, what: str) -> dict[str, Any]:
    """The reply body as a JSON object; :class:`OtaReplyError` says what it is instead."""
    try:
        return load_json_object(body, what=what)
    except ProtocolError as exc:
        raise OtaReplyError(exc.message) from None
