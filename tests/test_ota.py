"""OTA scenarios (PROTOCOL.md "Firmware over the air"): a signed v1 → v2 update end to end on a
provisioned board, every fault the update server can inject, refused and failing images, and power
cuts at every point of an update — in the session's wire format (``--hil-wire-profile``: the OTA
steps, chunk transport and signature scheme are the profile's; the server stores the reports in one
shape, so the scenarios read both).

Every failure path must leave the device on the version it ran, the secondary slot erased, and the
right ``error_code`` at the server. Each scenario names the defects it must detect (``fails_with``);
the defect meta-tests in selftest/ run it against a board with each of them and require a failure.
Evidence (OTA timeline, console excerpt, status reports) is attached by the ``ota_board`` fixture.
"""

from __future__ import annotations

from typing import Any

import pytest

from hil.images.build import load_or_build
from hil.images.layout import layout_for
from hil.images.mcuboot import TRAILER_SIZE
from hil.net.fallback import Capture
from hil.net.flows import http_exchanges_by_connection
from hil.net.http import HttpExchange
from hil.ota.board import OtaBoard
from hil.ota.sweep import SELFTEST_PASSED, CutPoint, sweep_points
from hil.server.under_test import ServerUnderTest
from hil.settings import settings
from hil.wire.profile import WireProfile

FAULT_CHUNK = 5   # early in the download: a failure path costs little time


@pytest.fixture
def server(ota_as_server: ServerUnderTest) -> ServerUnderTest:
    """Here the server under test is the update server (provisioning and the capture point at it)."""
    return ota_as_server


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per power-cut point (every chunk with --hil-power-cut-sweep all, a sample otherwise)."""
    if "cut_point" not in metafunc.fixturenames:
        return
    s = settings(metafunc.config)
    points = sweep_points(load_or_build(s.firmware_dir, chip=s.sim_chip, keys_dir=s.keys_dir), s.power_cut_sweep, s.power_cut_samples)
    # A cut after the self-test passed but before the confirm must revert: that proves the revert.
    marks = {"cut-at-selftest-passed": [pytest.mark.fails_with("mcuboot-never-revert")]}
    metafunc.parametrize("cut_point", [pytest.param(p, id=p.id, marks=marks.get(p.id, [])) for p in points])


def statuses(ota: OtaBoard) -> list[tuple[Any, ...]]:
    """(status, version, progress, error_code) of each report the device sent."""
    return [(s["status"], s["firmware_version"], s["progress_percent"], s["error_code"])
            for s in ota.server.statuses(ota.device.device_id)]


@pytest.mark.stride("T", "E", threat="an image nobody verified is installed, or the update is not visible")
@pytest.mark.fails_with("ota-skip-hash", "ota-skip-signature", "nonce-reset-on-update")
def test_ota_v1_to_v2_succeeds(ota_board: OtaBoard) -> None:
    """v1 checks, downloads v2 chunk by chunk, verifies SHA-256 and RSA-PSS, reboots; MCUboot
    verifies again and swaps; v2 self-tests and confirms; the server hears downloading … success.
    (MCUboot's check prints nothing when it passes, so a bootloader skipping it is caught by the
    refused-image scenarios, not by this good update.)"""
    v1, v2 = ota_board.running, ota_board.version_of("app-v2")
    ota_board.update("app-v2")
    reports = statuses(ota_board)
    downloading = [r for r in reports if r[0] == "downloading"]
    assert downloading[0][2] == 0 and downloading[-1][2] == 100, reports
    # a format may report several verifying phases (ecowatt-fw134: verifying, verification_success, installing)
    after = [status for i, (status, *_) in enumerate(reports[len(downloading):])
             if i == 0 or status != reports[len(downloading) + i - 1][0]]
    assert after == ["verifying", "success"], reports
    success = ota_board.server.statuses(ota_board.device.device_id)[-1]
    assert (success["firmware_version"], success["old_version"]) == (v2, v1)
    progress = [e.fields for e in ota_board.timeline() if e.event == "ota.progress"]  # what the console says
    assert progress and progress[-1]["percent"] == "100" and progress[-1]["chunk"] == progress[-1]["total"], progress
    assert (progress[0]["percent"], progress[0]["chunk"]) == ("0", "0"), progress  # said before the first chunk


@pytest.mark.stride("T", "D", threat="a confirmed update is lost at the next reset or power cycle")
@pytest.mark.fails_with("ota-confirm-before-selftest", "mcuboot-boot-in-place")
@pytest.mark.needs("power")
def test_ota_update_survives_reset_after_confirm(ota_board: OtaBoard) -> None:
    """After v2 confirmed itself, a reset and a power cycle both boot v2 with no swap, and the device
    sends no further report."""
    ota_board.update("app-v2")
    v2, reported = ota_board.running, len(statuses(ota_board))
    ota_board.board.reset()
    ota_board.expect_boot(v2, swap_type="none")
    ota_board.board.power_cycle()
    ota_board.expect_boot(v2, swap_type="none", after_power_on=True)
    assert ota_board.running_version() == v2
    assert len(statuses(ota_board)) == reported, statuses(ota_board)


FAILURES = [
    pytest.param("corrupt_chunk", {"chunk": FAULT_CHUNK}, "HASH_MISMATCH", id="corrupt-chunk",
                 marks=pytest.mark.fails_with("ota-skip-hash", "ota-keep-partial-on-failure")),
    pytest.param("truncate_chunk", {"chunk": FAULT_CHUNK}, "DOWNLOAD_FAILED", id="truncated-image",
                 marks=pytest.mark.fails_with("ota-keep-partial-on-failure")),
    pytest.param("bad_hash", {}, "HASH_MISMATCH", id="bad-hash",
                 marks=pytest.mark.fails_with("ota-skip-hash", "ota-keep-partial-on-failure")),
    pytest.param("bad_signature", {}, "SIGNATURE_INVALID", id="bad-signature",
                 marks=pytest.mark.fails_with("ota-skip-signature", "ota-keep-partial-on-failure")),
    pytest.param("wrong_signing_key", {}, "SIGNATURE_INVALID", id="wrong-signing-key",
                 marks=pytest.mark.fails_with("ota-skip-signature")),
]


@pytest.mark.stride("T", "E", threat="a corrupted, truncated or forged image is installed, or left half-written")
@pytest.mark.parametrize("fault, params, code", FAILURES)
def test_ota_faulty_image_refused(ota_board: OtaBoard, fault: str, params: dict[str, Any], code: str) -> None:
    """The server serves a damaged image or manifest: the device refuses it with ``code``, reports it,
    erases the secondary slot and keeps running v1."""
    ota_board.server.add_fault(fault, **params)
    ota_board.check()
    ota_board.console.expect_event("ota.available", 10, version=ota_board.version_of("app-v2"))
    ota_board.expect_failed(code)
    ota_board.assert_slot_erased_and_boots(ota_board.running)


@pytest.mark.stride("T", "D", threat="an image too big for the secondary slot is accepted: the slot is erased and "
                               "the download runs into MCUboot's trailer")
@pytest.mark.fails_with("ota-no-size-check")
def test_ota_image_larger_than_the_slot_refused_before_download(ota_board: OtaBoard) -> None:
    """The server claims an image one byte larger than the secondary slot can hold (the slot less
    MCUboot's trailer, which must stay erased for the swap request; ``claim_size``): the device refuses
    it with DOWNLOAD_FAILED before downloading a chunk and keeps running v1, the secondary slot erased."""
    layout = layout_for(ota_board.firmware.chip)
    ota_board.server.add_fault("claim_size", bytes=layout.slot_size - TRAILER_SIZE + 1)
    mark = ota_board.check()
    ota_board.console.expect_event("ota.available", 10, version=ota_board.version_of("app-v2"))
    ota_board.expect_failed("DOWNLOAD_FAILED")
    assert not [e for e in ota_board.timeline(mark) if e.event == "ota.progress"], "downloaded an image that cannot fit"
    ota_board.assert_slot_erased_and_boots(ota_board.running)


@pytest.mark.stride("T", "E", threat="an old, vulnerable firmware is pushed back onto the device")
@pytest.mark.ota_packages("downgrade")
@pytest.mark.fails_with("ota-accept-downgrade")
def test_ota_downgrade_refused(ota_board: OtaBoard) -> None:
    """Offered 0.9.0 while running 1.0.0 (``offer_version``), the device refuses before downloading
    anything and reports DOWNGRADE_REFUSED."""
    old = ota_board.version_of("downgrade")
    ota_board.server.add_fault("offer_version", version=old)
    mark = ota_board.check()
    ota_board.console.expect_event("ota.downgrade_refused", 10, offered=old, current=ota_board.running,
                                   unless=["ota.progress", "ota.rebooting"])
    ota_board.expect_failed("DOWNGRADE_REFUSED")
    assert not [e for e in ota_board.timeline(mark) if e.event == "ota.progress"], "downloaded a refused version"


@pytest.mark.stride("S", "E", threat="an image signed by someone else's MCUboot key is booted")
@pytest.mark.ota_packages("other-key")
@pytest.mark.fails_with("mcuboot-trust-embedded-key", "mcuboot-accept-unsigned", "mcuboot-skip-hash")
def test_ota_image_with_other_mcuboot_key_refused_at_swap(ota_board: OtaBoard) -> None:
    """A FOTA package that passes the device's checks but whose image is signed with another MCUboot
    key: MCUboot refuses the secondary slot at the swap, v1 boots and reports the rollback."""
    v1, offered = ota_board.running, ota_board.version_of("other-key")
    ota_board.check()
    ota_board.expect_downloaded(offered)
    mark = ota_board.console.cursor
    ota_board.expect_boot(v1)
    refused = [e.fields["slot"] for e in ota_board.timeline(mark) if e.event == "boot.refused"]
    assert refused == ["secondary"], f"MCUboot did not refuse the secondary slot: {refused}"
    ota_board.console.expect_event("ota.reverted", 10, attempted=offered, version=v1)
    assert ota_board.running_version() == v1
    ota_board.assert_reported("rolled_back", "BOOT_FAILED")


@pytest.mark.stride("D", threat="a flaky link makes the update fail or start over")
@pytest.mark.fails_with("ota-no-resume")
def test_ota_dropped_connection_resumes(ota_board: OtaBoard, capture: Capture, wire: WireProfile) -> None:
    """The server drops the connection twice in the middle of a chunk: the device retries that chunk
    on a new connection (no restart from zero) and the update completes. The capture shows it: the
    chunk was asked for on three connections, the first two cut before its body was complete."""
    ota_board.server.add_fault("drop_connection", chunk=FAULT_CHUNK, times=2)
    mark = ota_board.console.mark()
    ota_board.update("app-v2")
    events = ota_board.timeline(mark)
    retried = [e.text for e in events if e.event == "ota.retry"]
    assert len(retried) == 2, retried
    progress = [e for e in events if e.event == "ota.progress"]
    assert [e.fields["percent"] for e in progress].count("0") == 1, "the download restarted from 0 %"
    if not ota_board.server.url.startswith("https:"):  # over TLS the capture cannot tell which chunk
        chunk = wire.ota_target("chunk", device_id=ota_board.device.device_id,
                                version=ota_board.version_of("app-v2"), index=FAULT_CHUNK)
        attempts = _exchanges_on_each_connection(capture, chunk)
        assert len(attempts) == 3, f"chunk {FAULT_CHUNK} asked for on {len(attempts)} connection(s), expected 3"
        assert [ex.response is None for ex in attempts] == [True, True, False], "a drop left a complete answer"


def _exchanges_on_each_connection(capture: Capture, target: str) -> list[HttpExchange]:
    """Per TCP connection of the capture, the last exchange whose request target is *target* (plain
    HTTP connections only), in capture order."""
    capture.sync()
    found = []
    for exchanges in http_exchanges_by_connection(capture.path):
        found += [ex for ex in exchanges if ex.request.target == target][-1:]
    return found


@pytest.mark.stride("D", threat="a slow server bricks the device or leaves a half-written image")
@pytest.mark.fails_with("ota-no-resume")
def test_ota_slow_server_completes(ota_board: OtaBoard) -> None:
    """Chunks answered late (well within the device's timeout), one chunk late enough to time out
    once: the device waits, retries the timed-out chunk, and the update completes."""
    for chunk in range(FAULT_CHUNK):
        ota_board.server.add_fault("delay_chunk", chunk=chunk, ms=150)
    ota_board.server.add_fault("drop_connection", chunk=FAULT_CHUNK, times=1)
    ota_board.update("app-v2")


@pytest.mark.stride("D", "E", threat="a broken update that cannot reach its server stays installed")
@pytest.mark.ota_packages("selftest-fail")
@pytest.mark.fails_with("ota-confirm-before-selftest", "mcuboot-never-revert")
def test_ota_image_failing_selftest_is_reverted(ota_board: OtaBoard) -> None:
    """v2 installs and boots but fails its self-test: it does not confirm, the next reset reverts to
    v1, and the server hears failed BOOT_FAILED then rolled_back."""
    v1, bad = ota_board.running, ota_board.version_of("selftest-fail")
    console = ota_board.console
    ota_board.check()
    ota_board.expect_downloaded(bad)
    ota_board.expect_boot(bad, swap_type="test")
    console.expect_event("ota.selftest_failed", 10, unless=["ota.confirmed"])
    console.expect_event("ota.unconfirmed", 10, version=bad)
    ota_board.assert_reported("failed", "BOOT_FAILED")
    ota_board.board.reset()
    ota_board.expect_boot(v1, swap_type="revert")
    console.expect_event("ota.reverted", 10, attempted=bad, version=v1)
    assert ota_board.running_version() == v1
    ota_board.assert_reported("rolled_back", "BOOT_FAILED")


@pytest.mark.stride("T", "D", threat="power lost during an update leaves a half-written image or a dead device")
@pytest.mark.needs("power-cut")
def test_ota_power_cut(ota_board: OtaBoard, cut_point: CutPoint) -> None:
    """Power is cut at one point of a v1 → v2 update: the board boots a verified signed image — v1
    before the swap was requested or after an unconfirmed start, v2 from the swap request on — and
    after a cut that left v1 running, the device takes the update up again (offered v2, it writes the
    first chunk into the slot; power is cut there too). That the whole update then completes is
    ``test_ota_update_completes_after_power_cut``: one full update per cut is not needed to show it."""
    v1, v2 = ota_board.running, ota_board.version_of("app-v2")
    expected = v1 if cut_point.settles_on == "old" else v2
    assert ota_board.cut_update(cut_point) == expected, f"after {cut_point.id} the board runs the wrong image"
    assert ota_board.running_version() == expected
    if cut_point.settles_on == "old":
        ota_board.expect_update_restarts("app-v2")


@pytest.mark.stride("D", threat="a power cut during an update leaves the device unable to take the update again")
@pytest.mark.needs("power-cut")
@pytest.mark.fails_with("mcuboot-never-revert")
def test_ota_update_completes_after_power_cut(ota_board: OtaBoard) -> None:
    """Power is cut after v2 passed its self-test but before it confirmed — of all cuts the one that
    leaves the most behind (a reverted image in the secondary slot, MCUboot's trailers after a swap
    back, the attempt record): MCUboot reverts to v1, which reports the rollback, and the whole update
    then runs again and completes (v2 verified, swapped in, confirmed, success reported)."""
    v1 = ota_board.running
    assert ota_board.cut_update(SELFTEST_PASSED) == v1, f"after {SELFTEST_PASSED.id} the board runs the wrong image"
    ota_board.assert_reported("rolled_back", "BOOT_FAILED")
    ota_board.update("app-v2")
