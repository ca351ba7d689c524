"""OTA version scenarios (``hil.adversarial.versions``): which offers a device must install and which
it must refuse when versions compare differently as text and as numbers, when the label is no
``major.minor.patch`` at all, and when the server relabels a validly signed older image as newer.

Each case names the image the board runs and the package the update server offers (relabelled with
the ``relabel_version`` fault where the case says so). A refused offer leaves no chunk requested (the
capture shows none), the device on its version and the secondary slot erased; a relabelled image is
refused after the download, by the version its own signed descriptor carries.
"""

from __future__ import annotations

import pytest

from hil.adversarial.versions import NOT_NEWER_LABELS, RELABELLED, TEXT_ORDER, VersionCase
from hil.net.fallback import Capture
from hil.net.flows import http_exchanges_by_connection
from hil.ota.board import OtaBoard
from hil.server.under_test import ServerUnderTest
from hil.wire.profile import WireProfile

# Defects each case must catch (a case no defect flips would be a test that cannot fail).
CLAIMS = {
    "newer-as-text-older-as-number": pytest.mark.fails_with("ota-version-compared-as-text"),
    "older-as-text-newer-as-number": pytest.mark.fails_with("ota-version-compared-as-text", "ota-newest-by-text"),
    "same-version": pytest.mark.fails_with("ota-accept-downgrade"),
    "pre-release-of-running": pytest.mark.fails_with("ota-version-compared-as-text"),
    "two-components": pytest.mark.fails_with("ota-version-compared-as-text"),
    "v-prefix": pytest.mark.fails_with("ota-version-compared-as-text"),
    "four-components": pytest.mark.fails_with("ota-version-compared-as-text"),
    "major-past-the-header-field": pytest.mark.fails_with("ota-version-compared-as-text"),
    "older-image-under-newer-label": pytest.mark.fails_with("ota-trusts-offered-version", "ota-accept-downgrade"),
    "running-image-under-newer-label": pytest.mark.fails_with("ota-trusts-offered-version", "ota-accept-downgrade"),
}


@pytest.fixture
def server(ota_as_server: ServerUnderTest) -> ServerUnderTest:
    """Here the server under test is the update server (provisioning and the capture point at it)."""
    return ota_as_server


def cases(*sets: tuple[VersionCase, ...]) -> list[object]:
    """The cases as parameters: the board runs ``running``, the server holds ``package``."""
    return [
        pytest.param(case, id=case.name, marks=[pytest.mark.firmware(case.running),
                                                pytest.mark.ota_packages(case.package),
                                                CLAIMS[case.name]])
        for group in sets for case in group
    ]  # fmt: skip


def offer(ota_board: OtaBoard, case: VersionCase) -> str:
    """Make the server offer the case's package (relabelled if the case says so); returns the label."""
    version = ota_board.version_of(case.package)
    assert ota_board.running == ota_board.version_of(case.running)
    if case.label is None:
        ota_board.server.add_fault("offer_version", version=version)  # even when it is not newer
        return version
    ota_board.server.add_fault("relabel_version", version=version, label=case.label)
    return case.label


def chunk_requests(capture: Capture, wire: WireProfile) -> list[str]:
    """Targets of every OTA chunk request in the capture (plain HTTP connections)."""
    prefix = wire.ota_target("chunk", device_id="{", version="{", index="{").split("{", 1)[0]
    capture.sync()
    return [ex.request.target for exchanges in http_exchanges_by_connection(capture.path) for ex in exchanges
            if ex.request.target.startswith(prefix)]  # fmt: skip


def assert_refused_before_download(ota_board: OtaBoard, capture: Capture, wire: WireProfile, mark: int) -> None:
    """The check ended in a refusal (downgrade, or a reply the device cannot use), nothing was fetched
    and the device stays on its version with the secondary slot erased."""
    running = ota_board.running
    assert ota_board.running_version() == running  # the console answers once the check is over
    events = [e.event for e in ota_board.timeline(mark)]
    assert {"ota.downgrade_refused", "ota.check_failed"} & set(events), f"no refusal of the offer: {events}"
    assert not {"ota.progress", "ota.verified", "ota.rebooting"} & set(events), f"the offer was taken: {events}"
    if not ota_board.server.url.startswith("https:"):  # over TLS the capture cannot tell the requests apart
        assert chunk_requests(capture, wire) == [], "the device asked for chunks of an offer it had to refuse"
    reports = [(s["status"], s["error_code"]) for s in ota_board.server.statuses(ota_board.device.device_id)]
    assert set(reports) <= {("failed", "DOWNGRADE_REFUSED")}, reports
    ota_board.assert_slot_erased_and_boots(running)


@pytest.mark.stride("T", "E", threat="an older firmware whose version sorts newer as text is installed")
@pytest.mark.parametrize("case", cases(TEXT_ORDER[:1], NOT_NEWER_LABELS))
def test_ota_offer_that_is_not_newer_refused(ota_board: OtaBoard, capture: Capture, wire: WireProfile,
                                             case: VersionCase) -> None:
    """Offered a version that is not newer by number (1.9.0 to a board on 1.10.0, the running 1.0.0
    again) or no ``major.minor.patch`` at all (a pre-release, two or four components, a ``v`` prefix,
    a component too big for the image header): the device refuses at the check and fetches nothing."""
    offer(ota_board, case)
    mark = ota_board.check()
    assert_refused_before_download(ota_board, capture, wire, mark)


@pytest.mark.stride("D", threat="a device never updates because 1.10.0 sorts before 1.9.0 as text")
@pytest.mark.parametrize("case", cases(TEXT_ORDER[1:]))
def test_ota_newer_by_number_installed(ota_board: OtaBoard, case: VersionCase) -> None:
    """A board on 1.9.0 is offered 1.10.0 by the server's own choice (no fault) and installs it."""
    assert ota_board.running == ota_board.version_of(case.running)
    ota_board.update(case.package)


@pytest.mark.stride("T", "E", threat="a validly signed old image is installed under a newer label")
@pytest.mark.parametrize("case", cases(RELABELLED))
def test_ota_relabelled_image_refused(ota_board: OtaBoard, case: VersionCase) -> None:
    """The server offers a validly signed image (the 0.9.0 downgrade, the running 1.0.0) as 3.0.0:
    hash and signature verify, the version in its signed descriptor does not; the device refuses it
    with DOWNGRADE_REFUSED before asking for the swap, erases the slot and keeps running."""
    label, signed = offer(ota_board, case), ota_board.version_of(case.package)
    ota_board.check()
    ota_board.console.expect_event("ota.available", 10, version=label, unless=["ota.check_failed"])
    ota_board.console.expect_event("ota.downgrade_refused", ota_board.download_bound(case.package),
                                   offered=signed, current=ota_board.running, unless=["ota.rebooting"])
    ota_board.expect_failed("DOWNGRADE_REFUSED")
    ota_board.assert_slot_erased_and_boots(ota_board.running)
