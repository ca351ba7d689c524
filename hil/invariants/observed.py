"""What one test left behind, as the invariants read it: the built-in servers it started, the console
logs of its boards, the firmware profile that names their events, the secrets it provisioned, the
MCUboot slots of a board it updated, and what its capture shows the server was sent and answered."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hil.console.lines import strip_ansi
from hil.console.profile import FirmwareProfile
from hil.flashing import FlashRegion
from hil.images.layout import FlashLayout
from hil.net.flows import http_exchanges_by_connection
from hil.protocol.errors import ProtocolError
from hil.report.secrets import SecretRegistry
from hil.server.state import ServerState
from hil.wire.outcome import Outcome
from hil.wire.profile import WireProfile

FlashProbe = Callable[[Sequence[FlashRegion]], list[bool]]
"""Whether the flash holds each region's bytes (``Board.flash_matches``: one ROM loader session, nothing written)."""


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


@dataclass(frozen=True)
class CapturedUpload:
    """One upload exchange the capture holds: the packet's device and nonce, and the server's verdict."""

    device_id: str
    nonce: int
    accepted: bool


@dataclass
class ObservedCapture:
    """The test's capture of its built-in server's plain-HTTP traffic, read with the server's wire profile."""

    path: Path
    server: ObservedServer
    wire: WireProfile

    @functools.cached_property
    def uploads(self) -> list[CapturedUpload]:
        """Every upload exchange with a complete answer, in capture order per connection. A request that
        is no packet of the profile (a fuzz case, a truncated body) or whose answer never came is left
        out: the capture cannot say what the server made of it."""
        out = []
        for exchanges in http_exchanges_by_connection(self.path):
            for exchange in exchanges:
                target = exchange.request.target or ""
                if exchange.response is None or not self.wire.is_upload_path(target):
                    continue
                try:
                    packet = self.wire.parse_request(target, exchange.request.body)
                except ProtocolError:
                    continue
                verdict = self.wire.classify(exchange.response.status, exchange.response.body)
                out.append(CapturedUpload(packet.device_id, packet.nonce, verdict.outcome is Outcome.ACCEPTED))
        return out


@dataclass(frozen=True)
class SlotImage:
    """An image of the firmware index that an MCUboot slot may hold (the apps and their variants)."""

    name: str
    version: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ObservedSlots:
    """The MCUboot slots of a board the test updated over the air (``ota_board``): its console, where
    the slots are, the images they may hold, and how to compare the flash with them. Reading costs a
    loader session (and a reset), so a check asks ``matches`` once, for all it needs."""

    console: ObservedConsole
    layout: FlashLayout
    images: tuple[SlotImage, ...]
    matches: FlashProbe = field(repr=False)


@dataclass
class Observed:
    """Everything the invariants of one test look at."""

    servers: list[ObservedServer] = field(default_factory=list)
    consoles: list[ObservedConsole] = field(default_factory=list)
    secrets: SecretRegistry = field(default_factory=SecretRegistry)
    slots: list[ObservedSlots] = field(default_factory=list)
    artifacts: list[Path] = field(default_factory=list)  # its capture, evidence and other log files
    captures: list[ObservedCapture] = field(default_factory=list)
