"""What a run ran on: boards, firmware, key fingerprints, tool versions.

Fixtures fill the run's ``Environment`` (kept in ``config.stash``, see ``environment_of``); the
plugin renders it as the report's environment table (pytest-metadata) and ``environment.json``.
Every recorded value passes a guard: PEM blocks and registered secrets are refused with an error
naming the record, so key material cannot reach the report through this door.
"""

from __future__ import annotations

import hashlib
import html
import platform
from importlib import metadata
from typing import Any

from hil.report.secrets import Secret, SecretRegistry

DEFAULT_TOOLS: tuple[str, ...] = ("esptool", "imgtool", "pyserial", "scapy", "pytest", "pytest-html", "pytest-xdist")
SECTIONS: dict[str, str] = {  # stored section -> environment table heading
    "boards": "hil boards",
    "firmware": "hil firmware",
    "key_fingerprints": "hil key fingerprints",
    "tools": "hil tools",
}


class SecretRefusedError(ValueError):
    """A value offered to the environment table looks like key material."""


def fingerprint_of(material: bytes) -> str:
    """A printable SHA-256 fingerprint of key material (safe to record; the material is not)."""
    return "SHA256:" + hashlib.sha256(material).hexdigest()


def _distribution_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


class Environment:
    """Collector of environment facts; one per run, filled by fixtures, merged across workers."""

    def __init__(self, secrets: SecretRegistry | None = None) -> None:
        self.secrets = secrets if secrets is not None else SecretRegistry()
        self._sections: dict[str, dict[str, dict[str, str]]] = {s: {} for s in SECTIONS}

    def register_secret(self, secret: Secret, name: str = "secret") -> None:
        """Register key material: refused by every ``record_*`` and scrubbed from the outputs."""
        self.secrets.register(secret, name)

    def _record(self, section: str, name: str, **fields: Any) -> None:
        values = {"name": str(name), **{k: str(v) for k, v in fields.items()}}
        for field, value in values.items():
            reason = self.secrets.refusal(value)
            if reason:
                raise SecretRefusedError(f"environment refuses {section} record {name!r} field {field!r}: {reason}")
        self._sections[section][str(name)] = {k: v for k, v in values.items() if k != "name"}

    def record_board(
        self, name: str, chip: str, mac: str, port: str, *, virtual: bool | None = None, timing: str | None = None
    ) -> None:
        """A board the run used: its chip, base MAC and serial port (URL); ``virtual`` says whether it
        is a virtual board and ``timing`` names its timing profile (None: as recorded before, if it was)."""
        before = self._sections["boards"].get(str(name), {})
        fields = {"chip": chip, "mac": mac, "port": port}
        kind = before.get("kind")
        if virtual is not None:
            kind = "virtual" if virtual else "real"
        if kind:
            fields["kind"] = kind
        timing = timing or before.get("timing")
        if timing:
            fields["timing"] = timing
        self._record("boards", name, **fields)

    def board_kind(self) -> str | None:
        """``real``, ``virtual`` or ``real and virtual``: what the recorded boards were (None: no board
        recorded its kind)."""
        kinds = {fields["kind"] for fields in self._sections["boards"].values() if "kind" in fields}
        if not kinds:
            return None
        return " and ".join(sorted(kinds))

    def boards_summary(self) -> str | None:
        """One line naming the run's boards and whether they were real or virtual (None: no board)."""
        boards = self._sections["boards"]
        if not boards:
            return None
        kind = self.board_kind()
        label = "kind not recorded" if kind is None else kind.replace("real", "REAL")
        listed = ", ".join(
            f"{name} ({fields.get('chip', '?')}, MAC {fields.get('mac', '?')})"
            for name, fields in sorted(boards.items())
        )
        return f"hil boards: {label} \N{EM DASH} {listed}"

    def record_firmware(self, name: str, version: str, sha256: str) -> None:
        """A firmware image the run flashed: version string and SHA-256 of the image."""
        self._record("firmware", name, version=version, sha256=sha256)

    def record_key_fingerprint(self, name: str, fingerprint: str) -> None:
        """The fingerprint of a key the run trusted or signed with (never the key)."""
        self._record("key_fingerprints", name, fingerprint=fingerprint)

    def record_tool(self, name: str, version: str) -> None:
        """A tool and its version."""
        self._record("tools", name, version=version)

    def record_default_tools(self) -> None:
        """Record Python and the installed versions of the tools a report must name."""
        self.record_tool("python", platform.python_version())
        for dist in DEFAULT_TOOLS:
            self.record_tool(dist, _distribution_version(dist))

    def to_dict(self) -> dict[str, dict[str, dict[str, str]]]:
        """Plain data (environment.json, xdist transfer)."""
        return {section: {k: dict(v) for k, v in rows.items()} for section, rows in self._sections.items()}

    def merge(self, data: dict[str, dict[str, dict[str, str]]]) -> None:
        """Add records another process made (each passes the guard again)."""
        for section, rows in data.items():
            if section not in SECTIONS:
                raise ValueError(f"unknown environment section {section!r}")
            for name, fields in rows.items():
                self._record(section, name, **fields)

    def to_metadata(self) -> dict[str, Any]:
        """Rows for the pytest-metadata environment table, HTML-escaped (pytest-html inserts
        environment values as markup); ``boards: real|virtual`` first when the boards recorded it."""
        table: dict[str, Any] = {}
        kind = self.board_kind()
        if kind:  # first row: a reader must not have to guess whether the evidence came from hardware
            table["boards"] = kind
        for section, heading in SECTIONS.items():
            rows = self._sections[section]
            if rows:
                table[heading] = {
                    html.escape(name): html.escape(_one_line(fields)) for name, fields in sorted(rows.items())
                }
        return table


def _one_line(fields: dict[str, str]) -> str:
    if list(fields) == ["version"]:
        return fields["version"]
    return ", ".join(f"{k} {v}" for k, v in fields.items())
