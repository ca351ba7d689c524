"""The harness's waits follow the board's timing profile, not constants sized for the virtual board:
a board whose boot takes longer than the old fixed 5 s boot window (a slow ROM/bootloader, as the
virtual board's ``--timing`` can make it) still boots within ``board.timing.boot()``, because its
inventory entry carries its figures."""

from __future__ import annotations

import time

import pytest

from hil.board.board import Board
from hil.board.flash_app import flash_app
from hil.board.spec import BoardSpec
from hil.images.index import Index
from hil.sim.board import VirtualBoard
from hil.sim.boot import boot_chain
from hil.sim.firmware import run_app
from hil.sim.rfc2217_server import Rfc2217Server
from hil.sim.timing import SimTiming

OLD_BOOT_WINDOW = 5.0  # tests/test_boot.py's fixed BOOT_TIMEOUT before timing profiles
SLOW = SimTiming(name="slow-rom", rom_boot=6.0)


@pytest.fixture
def slow_board(tmp_path):
    sim = VirtualBoard("esp32", tmp_path, firmware=boot_chain(run_app, SLOW), name="slowdut").open()
    server = Rfc2217Server(sim).start()
    spec = BoardSpec(
        name="slowdut",
        port=server.url,
        chip="esp32",
        capabilities=frozenset({"virtual", "reset"}),
        reset_pulse=0.0,
        flash_baud=0,
        timing="virtual",
        timing_overrides=tuple(sorted(SLOW.figures().items())),
    )
    board = Board(spec).open()
    yield board
    board.close()
    server.close()
    sim.close()


def test_boot_wait_follows_the_boards_figures(slow_board: Board, firmware: Index) -> None:
    bound = slow_board.timing.boot(firmware.get("app-v1").size)
    assert bound >= 3 * SLOW.rom_boot  # the profile's margin over the board's own figure
    flash_app(slow_board, firmware, "app-v1")
    started = time.monotonic()
    slow_board.console.expect_event("boot.version", bound, version=firmware.get("app-v1").version)
    took = time.monotonic() - started
    # the old fixed window would have failed this correct board
    assert took > OLD_BOOT_WINDOW, f"boot took {took:.1f} s: the slow ROM figure did not apply"
