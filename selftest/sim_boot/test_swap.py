"""The swap table (none/test/perm/revert), confirmation, and power cuts at every swap step."""

from __future__ import annotations

import pytest

from hil.images import mcuboot as mb
from hil.images.layout import layout_for
from hil.sim.boot.validate import validate_slot
from hil.sim.firmware import bootctl
from sim_boot.fakes import FakeFlash, FakeRuntime, boot, install

LAYOUT = layout_for("esp32")
G, U, B = mb.MagicState.GOOD, mb.MagicState.UNSET, mb.MagicState.BAD
S, N = mb.Flag.SET, mb.Flag.UNSET


@pytest.mark.parametrize("primary,secondary,expected", [
    ((U, N, N), (U, N, N), mb.SwapType.NONE),
    ((G, S, S), (U, N, N), mb.SwapType.NONE),      # confirmed after a swap
    ((U, N, N), (G, N, N), mb.SwapType.TEST),
    ((G, S, S), (G, N, N), mb.SwapType.TEST),
    ((U, N, N), (G, S, N), mb.SwapType.PERM),
    ((G, N, S), (U, N, N), mb.SwapType.REVERT),    # test image never confirmed
    ((G, N, N), (U, N, N), mb.SwapType.NONE),      # copy_done unset: not swapped in
    ((G, N, S), (B, N, N), mb.SwapType.NONE),
])
def test_swap_type_table(primary, secondary, expected):
    state = lambda t: mb.TrailerState(t[0], t[1], t[2])  # noqa: E731
    assert mb.swap_type_for(state(primary), state(secondary)) is expected


def pending_flash(artifacts, permanent: bool = False, secondary: str = "v2") -> FakeFlash:
    flash = FakeFlash()
    install(flash, artifacts, primary="v1", secondary=secondary)
    bootctl.request_upgrade(FakeRuntime(flash), permanent=permanent)
    return flash


def version(rt: FakeRuntime) -> str | None:
    return next((ln.split("Firmware Version: ")[1].split("\033")[0] for ln in rt.lines
                 if "Firmware Version: " in ln), None)


def swap_line(rt: FakeRuntime) -> str:
    return next(ln for ln in rt.lines if "Swap type:" in ln).rsplit(" ", 1)[1]


def test_test_swap_then_revert_when_not_confirmed(artifacts):
    flash = pending_flash(artifacts)
    first = boot(flash)
    assert (swap_line(first), version(first)) == ("test", "2.0.0")
    assert "Starting swap using scratch algorithm." in first.text
    assert not bootctl.running_image_confirmed(FakeRuntime(flash))
    second = boot(flash)
    assert (swap_line(second), version(second)) == ("revert", "1.0.0")
    third = boot(flash)
    assert (swap_line(third), version(third)) == ("none", "1.0.0")
    # the reverted-out test image is back in the secondary slot, unmarked
    secondary = flash.read(LAYOUT.secondary_slot, LAYOUT.slot_size)
    assert validate_slot(secondary, artifacts.trusted_der, FakeRuntime(flash).defects)
    assert secondary.startswith(artifacts.images["v2"])


def test_confirmed_test_image_stays(artifacts):
    flash = pending_flash(artifacts)
    boot(flash)
    assert bootctl.confirm_running_image(FakeRuntime(flash))
    assert not bootctl.confirm_running_image(FakeRuntime(flash))  # already confirmed
    again = boot(flash)
    assert (swap_line(again), version(again)) == ("none", "2.0.0")


def test_perm_swap_needs_no_confirmation(artifacts):
    flash = pending_flash(artifacts, permanent=True)
    first = boot(flash)
    assert (swap_line(first), version(first)) == ("perm", "2.0.0")
    again = boot(flash)
    assert (swap_line(again), version(again)) == ("none", "2.0.0")


def test_imgtool_padded_trailers_request_test_and_perm(artifacts):
    tail = mb.trailer_tail_size()
    test = mb.parse_trailer(artifacts.images["v2-pad-test"][-tail:])
    confirm = mb.parse_trailer(artifacts.images["v2-pad-confirm"][-tail:])
    unset = mb.TrailerState(U, N, N)
    assert mb.swap_type_for(unset, test) is mb.SwapType.TEST
    assert mb.swap_type_for(unset, confirm) is mb.SwapType.PERM
    flash = FakeFlash()
    install(flash, artifacts, primary="v1", secondary="v2-pad-confirm")
    assert version(boot(flash)) == "2.0.0"


def test_never_revert_defect_keeps_unconfirmed_image(artifacts):
    flash = pending_flash(artifacts)
    boot(flash)
    second = boot(flash, defects=("mcuboot-never-revert",))
    assert (swap_line(second), version(second)) == ("none", "2.0.0")


def test_boot_in_place_defect_runs_the_update_without_moving_it(artifacts):
    flash = pending_flash(artifacts)
    trial = boot(flash, defects=("mcuboot-boot-in-place",))
    assert (swap_line(trial), version(trial)) == ("test", "2.0.0")  # the log says what a swap says
    assert "Loading image 0 - slot 0 from flash, area id: 1" in trial.text
    assert flash.read(LAYOUT.primary_slot, LAYOUT.slot_size).startswith(artifacts.images["v1"])  # never copied
    assert bootctl.confirm_running_image(FakeRuntime(flash))  # it confirms itself as a swapped-in test image
    again = boot(flash, defects=("mcuboot-boot-in-place",))
    assert (swap_line(again), version(again)) == ("none", "1.0.0")  # correct MCUboot: 2.0.0, swapped in


@pytest.mark.parametrize("variant", ["unsigned", "bitflip", "other-key"])
def test_invalid_secondary_is_erased_not_swapped(variant, artifacts):
    flash = pending_flash(artifacts, secondary=variant)
    rt = boot(flash)
    # bootutil decides the swap type first, then validates the secondary slot and drops the swap
    asked = rt.lines.index("[esp32] [INF] Image index: 0, Swap type: test")
    assert rt.lines[asked + 1] == "[esp32] [ERR] Image in the secondary slot is not valid!"
    assert "Starting swap" not in rt.text and version(rt) == "1.0.0"
    assert flash.read(LAYOUT.secondary_slot, 4) == b"\xff" * 4


def swap_checkpoints(artifacts) -> int:
    rt = boot(pending_flash(artifacts))
    return sum(1 for name, _ in rt.checkpoints if name == "swap.sector")


def test_swap_has_checkpoints_for_every_step(artifacts):
    # two 64 KiB chunks x 3 steps x (erased, copied) + the trailer rewrite
    assert swap_checkpoints(artifacts) == 2 * 3 * 2 + 1


@pytest.mark.parametrize("cut_at", range(13))
def test_power_cut_at_every_swap_step_resumes(cut_at, artifacts):
    flash = pending_flash(artifacts)
    cut = boot(flash, cut=("swap.sector", cut_at))
    assert version(cut) is None
    again_cut = boot(flash, cut=("swap.sector", 0))  # and a cut while resuming
    assert version(again_cut) is None
    resumed = boot(flash)
    # loader.c boot_complete_partial_swap: the status is found in scratch, the swap completes, and
    # no swap type is logged (boot_swap_type_multi is not consulted for a swap in progress)
    assert "[esp32] [INF] Boot source: scratch" in resumed.lines
    assert "Starting swap using scratch algorithm." in resumed.text and "Swap type:" not in resumed.text
    assert version(resumed) == "2.0.0"
    reverted = boot(flash)  # the resumed swap left correct trailers: unconfirmed -> revert
    assert (swap_line(reverted), version(reverted)) == ("revert", "1.0.0")
