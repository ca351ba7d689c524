"""What one test left behind, as the invariants read it: the built-in servers it started, the console
logs of its boards, the firmware profile that names their events, and the secrets it provisioned."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from hil.console.lines import strip_ansi
from hil.console.profile import FirmwareProfile
from hil.report.secrets import SecretRegistry
from hil.server.state import ServerState


@dataclass(frozen=True)
class ObservedServer:
    """A built-in server of the test: where it was and its state (database, event log, answers)."""

    url: str
    state: ServerState


@dataclass
class ObservedConsole:
    """One board's console log of this test, and the profile its lines follow."""

    board: str
    log: Path
    profile: FirmwareProfile

    @functools.cached_property
    def lines(self) -> list[str]:
        """The logged lines, colours stripped (empty when the test wrote no log); read once, after the test."""
        if not self.log.is_file():
            return []
        return [strip_ansi(line) for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines()]


@dataclass
class Observed:
    """Everything the invariants of one test look at."""

    servers: list[ObservedServer] = field(default_factory=list)
    consoles: list[ObservedConsole] = field(default_factory=list)
    secrets: SecretRegistry = field(default_factory=SecretRegistry)
