"""The power-cut sweep's sample of swap steps: the steps whose recovery depends on the swap resuming
at the right step come first, spread from the first chunk swapped to the one holding the header."""

from __future__ import annotations

from hil.images.layout import layout_for
from hil.ota.sweep import swap_sample, swap_steps

SLOT = layout_for("esp32").slot_size


def test_swap_sample_takes_the_cuts_that_leave_data_only_in_the_scratch_area():
    steps = swap_steps(0x100400, 0x100400, SLOT)  # two ~1 MiB images: 17 chunks of 64 KiB
    picked = [steps[i] for i in swap_sample(steps, 3)]
    assert [(s["chunk"], s["step"], s["phase"]) for s in picked] == [
        (16, 1, "erased"),  # the first chunk swapped: its secondary half erased, its data in scratch
        (0, 2, "erased"),  # the last, holding the image header: its primary half erased
        (0xFFFF, 0, "trailer"),  # the trailer rewrite that commits the swap
    ]


def test_swap_sample_rotates_through_every_kind_of_step_and_keeps_the_trailer():
    steps = swap_steps(0x100400, 0x100400, SLOT)
    picked = [steps[i] for i in swap_sample(steps, 7)]
    assert {(s["step"], s["phase"]) for s in picked[:-1]} == {(st, ph) for st in range(3) for ph in ("erased", "copied")}
    assert picked[-1]["phase"] == "trailer"
    assert swap_sample(steps, 1) == [len(steps) - 1]
    assert len(swap_sample(steps, 100)) == 18  # one per chunk at most, and the trailer
