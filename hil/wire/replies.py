"""What a server speaking a profile answers: the profile's ``[server]`` templates rendered.

``[server.accepted]`` and ``[server.refusal]`` hold a status and a JSON body template; a string that
is exactly ``"{name}"`` becomes the typed value (``"{samples}"`` → ``10``), other strings are
formatted (``"Nonce {received_nonce} <= ..."``). ``[server.refusals.CODE]`` overrides the status and
message of one refusal code. Extra values a refusal carries (``retry_after_seconds``,
``received_nonce``, ``last_nonce``) are added to the body after the template's fields.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from hil.wire.profile import WireProfile

_WHOLE = re.compile(r"\{(\w+)\}")


def accepted(profile: WireProfile, **values: Any) -> tuple[int, dict[str, Any]]:
    """(status, body) of an accepted upload; *values*: ``device_id``, ``nonce``, ``samples``."""
    table = profile.server.get("accepted", {})
    return int(table.get("status", 200)), _render(table.get("body", {}), values)


def refusal(
    profile: WireProfile, code: str, message: str, *, default_status: int, extra: Mapping[str, Any]
) -> tuple[int, dict[str, Any]]:
    """(status, body) of a refusal with error *code* (an ``ErrorCode`` value) and *message*."""
    override = profile.server.get("refusals", {}).get(code, {})
    values = {"code": code, "message": message, **extra}
    if "message" in override:
        values["message"] = _format(override["message"], values)
    body = _render(profile.server.get("refusal", {}).get("body", {"error": "{message}"}), values)
    for key, value in extra.items():
        body.setdefault(key, value)
    return int(override.get("status", default_status)), body


def _render(template: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in template.items():
        if isinstance(value, str):
            whole = _WHOLE.fullmatch(value)
            out[key] = values.get(whole.group(1)) if whole and whole.group(1) in values else _format(value, values)
        else:
            out[key] = value
    return out


class _Keep(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"  # an unknown placeholder stays visible instead of raising


def _format(text: str, values: Mapping[str, Any]) -> str:
    return string.Formatter().vformat(text, (), _Keep(values))
