"""Invariants after every scenario, without being asked (:mod:`hil.invariants.checks`).

After a test body returned, its built-in servers (from ``server_factory``), its boards' console logs
(``board``), the secrets it provisioned (``provision``, plus the run's registered secrets) and the
MCUboot slots of a board it updated (``ota_board``: read over the ROM loader, which resets the board)
are checked while its fixtures still stand. A broken invariant fails the test with the invariant's
name; every test's verdicts are noted in its report row. A test that already failed keeps its own error.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hil.report.evidence import safe_name
from hil.settings import settings

if TYPE_CHECKING:
    from hil.images.nvs_gen import DeviceIdentity
    from hil.invariants.observed import Observed, ObservedCapture, ObservedServer

PROVISIONED = pytest.StashKey[list["DeviceIdentity"]]()  # identities the test's provision() wrote
_SECRET_FIELDS = ("hmac_key", "aes_key", "fota_key", "psk")


class InvariantBroken(AssertionError):
    """A scenario left one of the invariants broken; the message names it."""


def observe(item: pytest.Item) -> Observed:
    """What *item* left behind (only the fixtures it used)."""
    from hil.board.board import Board
    from hil.images.layout import layout_for
    from hil.invariants.observed import Observed, ObservedConsole, ObservedServer, ObservedSlots, SlotImage
    from hil.ota.board import OtaBoard
    from hil.report.pytest_plugin import environment_of
    from hil.server.under_test import ServerFactory

    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    observed = Observed()
    # only the harness's own fixtures: a self-test may name a fixture `board` or `server_factory` too
    factory = funcargs.get("server_factory")
    for server in factory.started if isinstance(factory, ServerFactory) else []:
        if server.handle is not None:
            observed.servers.append(ObservedServer(server.url, server.handle.state))
    board = funcargs.get("board")
    if isinstance(board, Board):
        log = settings(item.config).logs_dir / safe_name(item.nodeid) / f"{board.name}.log"
        observed.consoles.append(ObservedConsole(board.name, log, board.console.profile))
    ota = funcargs.get("ota_board")
    # a board without reset lines cannot be taken into the loader and back without a person
    if isinstance(ota, OtaBoard) and ota.board.reset_plan.wired:
        layout = layout_for(ota.firmware.chip)
        images = tuple(
            SlotImage(a.name, a.version, ota.firmware.path(a.name).read_bytes())
            for a in ota.firmware.artifacts
            if a.offset == layout.primary_slot and a.version is not None
        )
        observed.slots += [
            ObservedSlots(console, layout, images, ota.board.flash_matches)
            for console in observed.consoles
            if console.board == ota.board.name
        ]
    observed.captures += _captures(funcargs, observed.servers)
    observed.artifacts += _artifacts(item, funcargs, {c.log for c in observed.consoles})
    for name, raw in environment_of(item.config).secrets.export():
        observed.secrets.register(raw, name)
    for identity in item.stash.get(PROVISIONED, []):
        for field in _SECRET_FIELDS:
            value = getattr(identity, field)
            if len(value) >= 8:
                observed.secrets.register(value, f"{field} of {identity.device_id}")
    return observed


def _captures(funcargs: dict[str, Any], servers: list[ObservedServer]) -> list[ObservedCapture]:
    """The test's capture, when it saw its built-in server's traffic in plain HTTP (over TLS it cannot
    read what was accepted)."""
    from hil.invariants.observed import ObservedCapture
    from hil.net.fallback import Capture
    from hil.server.under_test import ServerUnderTest

    capture, server = funcargs.get("capture"), funcargs.get("server")
    if not (isinstance(capture, Capture) and isinstance(server, ServerUnderTest)) or server.handle is None:
        return []
    state = server.handle.state
    # reading a pcap costs ~1 s per MB (an update's download): only when the server answered uploads
    if server.scheme != "http" or not any(state.config.wire.is_upload_path(a.path) for a in state.responses.entries()):
        return []
    capture.sync()
    mine = [s for s in servers if s.state is server.handle.state]
    return [ObservedCapture(capture.path, observed, server.handle.state.config.wire) for observed in mine]


def _artifacts(item: pytest.Item, funcargs: dict[str, Any], consoles: set[Path]) -> list[Path]:
    """The files *item* wrote besides its boards' console logs: its capture (synced to what was
    exchanged so far), its evidence attachments and its other log files."""
    from hil.net.fallback import Capture
    from hil.report.pytest_plugin import EVIDENCE_KEY

    out: list[Path] = []
    capture = funcargs.get("capture")
    if isinstance(capture, Capture):
        capture.sync()
        out.append(capture.path)
    evidence = item.stash.get(EVIDENCE_KEY, None)
    folders = [settings(item.config).logs_dir / safe_name(item.nodeid)]
    folders += [evidence.directory] if evidence is not None else []
    for folder in folders:
        if folder.is_dir():
            out += sorted(p for p in folder.rglob("*") if p.is_file() and p not in consoles)
    return out


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    result = yield  # a failing body raises here: its own error stands
    if not settings(item.config).invariants:
        return result
    from hil.invariants.checks import check_all
    from hil.report.pytest_plugin import EVIDENCE_KEY

    verdicts = [v for v in check_all(observe(item)) if v.applied]
    evidence = item.stash.get(EVIDENCE_KEY, None)
    if evidence is not None and verdicts:
        evidence.note("invariants: " + "; ".join(v.describe() for v in verdicts))
    broken = [v for v in verdicts if not v.holds]
    if broken:
        raise InvariantBroken("invariant broken — " + "\n".join(v.describe() for v in broken))
    return result
