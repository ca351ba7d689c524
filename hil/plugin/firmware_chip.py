"""At session start: the virtual boards' chip (``--hil-sim-chip``) against the firmware index's chip.

An index that ``hil images build`` made is (re)built for the virtual boards' chip, so the two agree.
A team's own build (a hand-written ``index.json``, no input fingerprint) is loaded untouched: if
its chip is not the virtual boards' chip, that is a usage error naming both and the fix, not a
virtual board of another chip silently given images it cannot boot. (The alternative, a virtual
board that follows the index's chip, would make the chip under test depend on which directory the
run happens to find, whatever the command line says.) Real boards are not checked here: their
chip is what esptool detects, compared with the index's before any write.
"""

from __future__ import annotations

import pytest

from hil.settings import HilSettings


def check_sim_chip(s: HilSettings) -> None:
    """Raise ``pytest.UsageError`` if virtual boards would run a team's index built for another chip."""
    from hil.images.index import IndexMissingError, load_index

    try:
        index = load_index(s.firmware_dir)
    except (IndexMissingError, ValueError):  # missing or hil-made and damaged: the build makes it fit
        return
    if index.input_fingerprint or index.chip == s.sim_chip or not _virtual_boards(s):
        return
    raise pytest.UsageError(
        f"the firmware index {index.index_path} is built for {index.chip}, but virtual boards are "
        f"{s.sim_chip} (--hil-sim-chip, ini hil_sim_chip; default esp32). Give --hil-sim-chip={index.chip}, "
        f"or --hil-firmware-dir=DIR with a {s.sim_chip} build"
    )


def _virtual_boards(s: HilSettings) -> bool:
    """Whether this run's boards will be virtual (asked only when an index and the chip disagree)."""
    from hil.board.inventory import InventoryError, inventory

    if s.virtual:
        return True
    try:
        return not inventory(s.ports, s.boards_file)
    except InventoryError as exc:
        raise pytest.UsageError(str(exc)) from exc
