"""Strict JSON decoding for untrusted bodies: every failure is a :class:`ProtocolError`, never a crash."""

from __future__ import annotations

import json
from typing import Any

from hil.protocol.errors import ErrorCode, ProtocolError


def load_json(data: bytes | str, *, what: str) -> Any:
    """``json.loads`` of UTF-8 *data*; deep nesting, over-long integers and bad UTF-8 become ``INVALID_PAYLOAD``."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(
            ErrorCode.INVALID_PAYLOAD, f"{what} is not valid UTF-8 JSON ({type(exc).__name__})"
        ) from None


def load_json_object(data: bytes | str, *, what: str) -> dict[str, Any]:
    """:func:`load_json` that also insists on a JSON object."""
    doc = load_json(data, what=what)
    if not isinstance(doc, dict):
        raise ProtocolError(ErrorCode.INVALID_PAYLOAD, f"{what} must be a JSON object")
    return doc
