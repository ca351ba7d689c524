"""The app's side of MCUboot (``bootutil_public``): confirm the running image, request a swap."""

from __future__ import annotations

from hil.images import mcuboot as mb
from hil.images.layout import layout_for
from hil.sim.runtime import Runtime


def _trailer(rt: Runtime, slot: int) -> tuple[int, mb.TrailerState]:
    layout = layout_for(rt.chip.name)
    end = layout.slot_offset(slot) + layout.slot_size
    size = mb.trailer_tail_size()
    return end, mb.parse_trailer(rt.flash.read(end - size, size))


def _apply(rt: Runtime, end: int, writes: list[tuple[int, bytes]]) -> None:
    for offset, value in writes:
        rt.flash.write(end + offset, value)


def running_image_confirmed(rt: Runtime) -> bool:
    """True unless the primary image is a test image still waiting for confirmation."""
    _, state = _trailer(rt, 0)
    return not (state.magic is mb.MagicState.GOOD and state.image_ok is mb.Flag.UNSET)


def confirm_running_image(rt: Runtime) -> bool:
    """``boot_set_confirmed``: set image_ok in the primary trailer. Returns True if it wrote."""
    end, state = _trailer(rt, 0)
    if state.magic is not mb.MagicState.GOOD or state.image_ok is not mb.Flag.UNSET:
        return False  # never swapped in as a test image, or already confirmed
    _apply(rt, end, mb.confirm_writes())
    rt.checkpoint("boot.confirmed")
    return True


def request_upgrade(rt: Runtime, permanent: bool = False) -> None:
    """``boot_set_pending``: mark the secondary slot for a test (or permanent) swap."""
    end, state = _trailer(rt, 1)
    if state.magic is mb.MagicState.GOOD:
        return  # already pending
    _apply(rt, end, mb.pending_writes(permanent))
    rt.checkpoint("boot.pending", permanent=permanent)
