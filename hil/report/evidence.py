"""Per-test evidence: measurements, notes, attachments and the log files to tail on failure.

One ``Evidence`` per test (the ``evidence`` fixture). Nothing touches the disk until something is
attached; full texts are written under ``<reports>/evidence/<test>/`` and only tails, tables and
links are embedded in the HTML report. Text passes the secret registry's redaction first.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_html import extras

from hil.report import html
from hil.report.limits import Limit
from hil.report.measurements import Measurement
from hil.report.secrets import SecretRegistry
from hil.report.tail import tail_lines

FAILED_LOG_TAIL_LINES = 40
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def safe_name(text: str, limit: int = 80) -> str:
    """A file-system safe rendering of ``text``; a short hash keeps distinct texts distinct."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', text).strip('._')[-limit:]}-{digest}"


@dataclass(frozen=True)
class _TextAttachment:
    name: str
    path: Path
    tail: str
    lines: int


class Evidence:
    """The evidence one test leaves in the report. Create with the test's nodeid and folders."""

    def __init__(self, nodeid: str, evidence_dir: Path, report_dir: Path, secrets: SecretRegistry) -> None:
        self.nodeid = nodeid
        self._dir = evidence_dir / safe_name(nodeid)
        self._report_dir = report_dir
        self._secrets = secrets
        self.measurements: list[Measurement] = []
        self.notes: list[str] = []
        self._texts: list[_TextAttachment] = []
        self._files: list[tuple[str, Path]] = []
        self._pngs: list[tuple[str, str]] = []
        self._logs: dict[str, Path] = {}
        self._checked = 0

    # -- recording ---------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """Where this test's evidence files go (absent until the first is written)."""
        return self._dir

    def measure(self, name: str, value: Any, unit: str = "", limit: Limit | None = None) -> Measurement:
        """Record a measurement. Outside its limit it fails the test when the test body returns
        (or the teardown, if recorded there), listing every failing measurement."""
        measurement = Measurement(name, value, unit, limit)
        self.measurements.append(measurement)
        return measurement

    def note(self, text: str) -> None:
        """A line of prose for the reviewer (redacted of registered secrets)."""
        self.notes.append(self._secrets.redact(str(text)))

    def attach_text(self, name: str, text: str, tail_lines: int | None = None) -> Path:
        """Keep ``text`` as a file next to the report; embed its last ``tail_lines`` lines (all
        lines when None). Returns the file's path."""
        clean = self._secrets.redact(text)
        path = self._new_path(name, ".txt")
        path.write_text(clean, encoding="utf-8")
        lines = clean.splitlines()
        count = len(lines) if tail_lines is None else min(tail_lines, len(lines))
        self._texts.append(_TextAttachment(name, path, "\n".join(lines[-count:] if count else []), count))
        return path

    def attach_file(self, name: str, path: os.PathLike[str] | str) -> None:
        """Link an existing file (a pcap, a log, an image) from the report, relative to it."""
        file = Path(path)
        if not file.exists():
            raise FileNotFoundError(
                f"evidence for {self.nodeid}: attachment {name!r} points at {file}, which does not exist"
            )
        self._files.append((name, file.resolve()))

    def attach_png(self, name: str, data: bytes) -> None:
        """Embed a PNG image (base64, in the self-contained report)."""
        if not bytes(data).startswith(_PNG_SIGNATURE):
            raise ValueError(
                f"evidence for {self.nodeid}: {name!r} is not a PNG "
                "(missing the PNG signature); render plots with format='png'"
            )
        self._pngs.append((name, base64.b64encode(bytes(data)).decode("ascii")))

    def add_log(self, name: str, path: os.PathLike[str] | str) -> None:
        """Register a per-test log file (e.g. ``"board-0 console"``): a failed test's row shows
        its last lines and links the full file."""
        self._logs[name] = Path(path).resolve()

    @property
    def log_files(self) -> Mapping[str, Path]:
        """The registered log files, by name (read-only view)."""
        return MappingProxyType(self._logs)

    # -- verdicts ----------------------------------------------------------------------------
    def take_failures(self) -> list[Measurement]:
        """Failing measurements recorded since the last call (each is reported once)."""
        fresh = self.measurements[self._checked :]
        self._checked = len(self.measurements)
        return [m for m in fresh if m.passed is False]

    # -- report ------------------------------------------------------------------------------
    def _new_path(self, name: str, suffix: str) -> Path:
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._dir / (safe_name(name, 60) + suffix)
        index = 1
        while path.exists():  # two attachments of one name keep both
            path = self._dir / f"{safe_name(name, 60)}.{index}{suffix}"
            index += 1
        return path

    def _href(self, path: Path) -> str:
        return Path(os.path.relpath(path, self._report_dir)).as_posix()

    def payload(self) -> dict[str, Any]:
        """Plain data for the xdist controller: measurements and notes."""
        return {"measurements": [m.to_dict() for m in self.measurements], "notes": list(self.notes)}

    def extras(self, failed: bool) -> list[dict[str, Any]]:
        """pytest-html extras for the test's row; log tails only when the test ``failed``."""
        out: list[dict[str, Any]] = []
        if self.measurements:
            out.append(extras.html(html.measurements_table([m.to_dict() for m in self.measurements])))
        if self.notes:
            out.append(extras.html(html.notes_block(self.notes)))
        for text in self._texts:
            out.append(extras.html(html.tail_block(text.name, text.tail, self._href(text.path), text.lines)))
        links = list(self._files)
        if failed:
            out += [self._log_tail(name, path) for name, path in self._logs.items()]
            links += self._logs.items()
        for name, path in links:
            out.append(extras.url(html.escape_url(self._href(path)), name=html.escape_text(name)))
        out += [extras.png(data, name=name) for name, data in self._pngs]
        return out

    def _log_tail(self, name: str, path: Path) -> dict[str, Any]:
        if not path.is_file():
            return extras.html(html.tail_block(f"{name}: no log file at {path}", "", None, 0))
        tail = self._secrets.redact(tail_lines(path, FAILED_LOG_TAIL_LINES))
        count = len(tail.splitlines())
        return extras.html(html.tail_block(name, tail, self._href(path), count))

    def junit_properties(self) -> list[tuple[str, str]]:
        """Readable measurement rows for JUnit ``<property>`` elements."""
        return [
            (
                f"measurement:{m.name}",
                f"{m.value} {m.unit}".strip() + (f" (limit {m.limit_text}) {m.verdict}" if m.limit else ""),
            )
            for m in self.measurements
        ]
