"""Registered secrets: refuse them where evidence is recorded, find and redact them in outputs.

Fixtures that load key material (HMAC/AES keys, PSKs, private keys) register it with
``environment.register_secret(value, name)``. The registry then knows every encoding the secret
can take in a report (raw text, hex, base64, HTML/JSON-escaped, inside base64 ``data:`` URIs) so the
final scrub finds it wherever it landed. Only secret *names* are ever printed.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import markupsafe

MIN_SECRET_LENGTH = 8  # shorter needles would redact ordinary text all over the report
PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]+-----")
# header, then base64 body characters (also as JSON "\\n" or HTML "&#10;" line breaks), then the
# footer if present: a header without a body never swallows the rest of a report
PEM_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[A-Za-z0-9+/=\s\\&#;]*"
    r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?"
)
_HEX = re.compile(r"\A(?:[0-9a-fA-F]{2}){16,}\Z")
_DATA_URI = re.compile(
    r"data:(?P<mime>text/[\w.+-]+|application/json)(?P<cs>;charset=[\w-]+)?"
    r";base64,(?P<b64>[A-Za-z0-9+/=]+)"
)

Secret: TypeAlias = bytes | bytearray | str


def _escaped_forms(text: str) -> set[str]:
    """``text`` as it appears after the escapings a report applies (HTML, JSON, both)."""
    as_json = json.dumps(text)[1:-1]
    forms = {
        text,
        html.escape(text),
        html.escape(text, quote=False),
        str(markupsafe.escape(text)),
        as_json,
        str(markupsafe.escape(as_json)),
        str(markupsafe.escape(json.dumps(html.escape(text))[1:-1])),
    }
    return {f for f in forms if f}


@dataclass(frozen=True)
class _Entry:
    name: str
    raw: bytes
    needles: tuple[str, ...]


def _needles(raw: bytes) -> tuple[str, ...]:
    forms = {raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode()}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text.strip():
        forms |= _escaped_forms(text)
    # longest first, so redacting a long form is not pre-empted by a shorter one inside it
    return tuple(sorted(forms, key=len, reverse=True))


def _as_bytes(secret: Secret) -> bytes:
    if isinstance(secret, str):
        # a hex string stands for the key bytes: also catch it as base64 / raw elsewhere
        return bytes.fromhex(secret) if _HEX.match(secret) else secret.encode("utf-8")
    return bytes(secret)


class SecretRegistry:
    """The secrets of this run, by name; finds and redacts them in text and files."""

    def __init__(self) -> None:
        self._entries: dict[bytes, _Entry] = {}

    def register(self, secret: Secret, name: str = "secret") -> None:
        """Register key material so the report refuses and scrubs it. Too-short values raise."""
        raw = _as_bytes(secret)
        if len(raw) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"secret {name!r} is {len(raw)} bytes; at least "
                f"{MIN_SECRET_LENGTH} are needed to scrub it without false matches"
            )
        if raw not in self._entries:
            self._entries[raw] = _Entry(name, raw, _needles(raw))

    def __len__(self) -> int:
        return len(self._entries)

    def export(self) -> list[tuple[str, bytes]]:
        """(name, bytes) pairs to hand the xdist controller (never logged)."""
        return [(e.name, e.raw) for e in self._entries.values()]

    def merge(self, exported: list[tuple[str, bytes]]) -> None:
        """Add secrets exported by another process."""
        for name, raw in exported:
            self.register(bytes(raw), name)

    def find(self, text: str) -> list[str]:
        """Names of the registered secrets in ``text`` (also inside base64 text data URIs)."""
        found = [e.name for e in self._entries.values() if any(n in text for n in e.needles)]
        for match in _DATA_URI.finditer(text):
            decoded = _decode(match.group("b64"))
            if decoded:
                found += [e.name for e in self._entries.values() if any(n in decoded for n in e.needles)]
        if PEM_PRIVATE_KEY.search(text):
            found.append("PEM private key")
        return sorted(set(found))

    def find_bytes(self, data: bytes) -> list[str]:
        """Names of the registered secrets in binary *data* (a capture, a log file of any encoding): the
        raw bytes, or any of their text forms."""
        return sorted(
            {e.name for e in self._entries.values() if e.raw in data or any(n.encode() in data for n in e.needles)}
        )

    def redact(self, text: str) -> str:
        """``text`` with every registered secret (and PEM private key) replaced by a marker."""
        for entry in self._entries.values():
            for needle in entry.needles:
                text = text.replace(needle, f"[redacted secret: {entry.name}]")
        return PEM_PRIVATE_KEY.sub("[redacted PEM private key]", text)

    def refusal(self, value: str) -> str | None:
        """Why ``value`` must not be recorded as evidence, or None when it may."""
        if PEM_BLOCK.search(value):
            return "it contains a PEM block (key material); record a fingerprint instead"
        names = [e.name for e in self._entries.values() if any(n in value for n in e.needles)]
        if names:
            return f"it contains registered secret(s) {', '.join(sorted(set(names)))}"
        return None


def _decode(b64: str) -> str:
    try:
        return base64.b64decode(b64, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _redact_data_uris(text: str, registry: SecretRegistry) -> str:
    def fix(match: re.Match[str]) -> str:
        decoded = _decode(match.group("b64"))
        if not decoded or not registry.find(decoded):
            return match.group(0)
        clean = base64.b64encode(registry.redact(decoded).encode()).decode()
        return f"data:{match.group('mime')}{match.group('cs') or ''};base64,{clean}"

    return _DATA_URI.sub(fix, text)


def scrub_file(path: Path, registry: SecretRegistry) -> list[str]:
    """Redact registered secrets in a written report file; return the names found (empty: clean)."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    found = registry.find(text)
    if found:
        path.write_text(_redact_data_uris(registry.redact(text), registry), encoding="utf-8")
    return found
