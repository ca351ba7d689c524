"""The update across reboots, through the MCUboot model: the new image self-tests and confirms, a
failing one is reverted and the old app reports the rollback, and a power cut anywhere in the update
leaves a bootable board."""

from __future__ import annotations

import pytest

from hil.images import mcuboot as mb
from hil.sim.firmware import bootctl
from hil.sim.firmware.identity import NvsStore
from hil.sim.runtime import Reboot
from sim_boot.fakes import FakeFlash, FakeRuntime, boot
from sim_ota.conftest import LAYOUT, install_board
from sim_ota.test_ota_update import event


def version(rt: FakeRuntime) -> str | None:
    found = event(rt, "boot.version")
    return found[0]["version"] if found else None


def swap(rt: FakeRuntime) -> str:
    return event(rt, "boot.swap")[0]["swap_type"]


def update(flash: FakeFlash, defects: tuple[str, ...] = ()) -> FakeRuntime:
    """``ota check`` on the console of the running app; the app reboots into the update."""
    with pytest.raises(Reboot):
        boot(flash, defects, inputs=("ota check",))
    return boot(flash, defects)


@pytest.fixture
def board(ota_images, nvs_image):
    def factory(url: str) -> FakeFlash:
        flash = FakeFlash()
        install_board(flash, ota_images, nvs_image, url)
        return flash
    return factory


def staged(make_ota_server, board):
    """A board whose app just ran ``ota check`` and rebooted: the update waits in the secondary slot."""
    server = make_ota_server()
    flash = board(server.url)
    with pytest.raises(Reboot):
        boot(flash, inputs=("ota check",))
    return server, flash


def test_update_swaps_in_self_tests_confirms_and_reports_success(make_ota_server, board):
    server = make_ota_server()
    flash = board(server.url)
    first = update(flash)
    assert (swap(first), version(first)) == ("test", "2.0.0")
    assert event(first, "ota.selftest_passed") and event(first, "ota.confirmed") == [{"version": "2.0.0"}]
    assert server.statuses()[-1] == ("success", "2.0.0", None, None, "1.0.0", None)
    assert NvsStore(first).ota_attempt() is None and bootctl.running_image_confirmed(first)
    again = boot(flash)
    assert (swap(again), version(again)) == ("none", "2.0.0") and not event(again, "ota.confirmed")


def test_failing_self_test_is_reverted_and_the_old_app_reports_it(make_ota_server, board):
    server = make_ota_server("selftest-fail")
    flash = board(server.url)
    trial = update(flash)
    assert (swap(trial), version(trial)) == ("test", "2.0.0")
    assert "application check failed" in event(trial, "ota.selftest_failed")[0]["reason"]
    assert event(trial, "ota.unconfirmed") and not event(trial, "ota.confirmed")
    assert server.statuses()[-1][:4] == ("failed", "2.0.0", None, "BOOT_FAILED")
    back = boot(flash)
    assert (swap(back), version(back)) == ("revert", "1.0.0")
    assert event(back, "ota.reverted") == [{"attempted": "2.0.0", "version": "1.0.0"}]
    assert server.statuses()[-1] == ("rolled_back", "2.0.0", None, "BOOT_FAILED", None, "1.0.0")
    settled = boot(flash)
    assert (swap(settled), version(settled)) == ("none", "1.0.0") and not event(settled, "ota.reverted")


def test_confirm_before_selftest_defect_keeps_the_failing_image(make_ota_server, board):
    server = make_ota_server("selftest-fail")
    flash = board(server.url)
    defect = ("ota-confirm-before-selftest",)
    trial = update(flash, defect)
    assert event(trial, "ota.confirmed") and event(trial, "ota.selftest_failed")
    kept = boot(flash, defect)
    assert (swap(kept), version(kept)) == ("none", "2.0.0")  # correct firmware: revert to 1.0.0


@pytest.mark.parametrize("defects", [(), ("nonce-reset-on-update",)], ids=["correct", "defect"])
def test_nonce_reset_on_update_defect_restarts_the_nonce_at_confirm(make_ota_server, board, defects):
    flash = board(make_ota_server().url)
    (provisioned,) = event(boot(flash), "nonce.loaded")
    first = update(flash, defects)
    assert event(first, "ota.confirmed") and event(first, "nonce.loaded") == [provisioned]  # loaded before the confirm
    again = boot(flash, defects)
    assert event(again, "nonce.loaded") == [{"nonce": "0"} if defects else provisioned]


def test_unreachable_server_fails_the_self_test(make_ota_server, board):
    server, flash = staged(make_ota_server, board)
    server.handle.stop()
    trial = boot(flash)
    assert "update server unreachable" in event(trial, "ota.selftest_failed")[0]["reason"]
    assert event(trial, "ota.status_failed") and not bootctl.running_image_confirmed(trial)


def primary_image(flash: FakeFlash, images) -> bytes:
    return flash.read(LAYOUT.primary_slot, len(images.signed["v1"]))


def test_power_cut_after_each_chunk_leaves_the_running_image(make_ota_server, board, ota_images):
    server = make_ota_server()
    flash = board(server.url)
    chunks = -(-(len(ota_images.signed["v2"]) // 16 + 1) * 16 // 2048)
    for chunk in range(chunks):
        cut_rt = boot(flash, inputs=("ota check",), cut=("ota.chunk_written", chunk))
        assert cut_rt.checkpoints[-1] == ("ota.chunk_written", {"chunk": chunk})  # cut where armed
        after = boot(flash)
        assert (swap(after), version(after), chunk) == ("none", "1.0.0", chunk)
    assert primary_image(flash, ota_images) == ota_images.signed["v1"]
    assert NvsStore(after).ota_attempt() is None


def test_power_cut_after_verifying_leaves_the_running_image_and_the_update_can_rerun(make_ota_server, board,
                                                                                     ota_images):
    server = make_ota_server()
    flash = board(server.url)
    boot(flash, inputs=("ota check",), cut=("ota.verified", 0))
    after = boot(flash)
    assert (swap(after), version(after)) == ("none", "1.0.0")
    assert primary_image(flash, ota_images) == ota_images.signed["v1"] and NvsStore(after).ota_attempt() is None
    assert update(flash) and version(boot(flash)) == "2.0.0"


def test_power_cut_after_pending_boots_the_update(make_ota_server, board):
    server = make_ota_server()
    flash = board(server.url)
    boot(flash, inputs=("ota check",), cut=("boot.pending", 0))
    after = boot(flash)
    assert (swap(after), version(after)) == ("test", "2.0.0") and event(after, "ota.confirmed")


def test_power_cut_before_confirming_reverts_and_reports(make_ota_server, board):
    _, flash = staged(make_ota_server, board)
    trial = boot(flash, cut=("ota.selftest_passed", 0))
    assert version(trial) == "2.0.0" and not event(trial, "ota.confirmed")
    back = boot(flash)
    assert (swap(back), version(back)) == ("revert", "1.0.0") and event(back, "ota.reverted")


def test_power_cut_after_confirming_still_reports_success(make_ota_server, board):
    server, flash = staged(make_ota_server, board)
    boot(flash, cut=("boot.confirmed", 0))
    assert [s[0] for s in server.statuses()][-1] == "verifying"
    after = boot(flash)
    assert (swap(after), version(after)) == ("none", "2.0.0")
    assert server.statuses()[-1] == ("success", "2.0.0", None, None, "1.0.0", None)
    assert NvsStore(after).ota_attempt() is None
