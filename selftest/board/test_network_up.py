"""``wait_network_up``: after a boot the harness waits for the firmware's ``net.up`` event (the
virtual board prints ESP-IDF's line with its address) and checks it is the address the inventory
declares, since captures filter on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from hil.board.board import Board, BoardError
from hil.board.contract import wait_network_up
from hil.board.flash_app import flash_app
from hil.board.virtual import VirtualBoardSource
from hil.console.profile import load_profile
from hil.images.index import Index


@pytest.fixture
def virtual(tmp_path: Path, firmware: Index) -> Iterator[tuple[VirtualBoardSource, Board]]:
    """A virtual board running the reference app (its factory NVS)."""
    source = VirtualBoardSource("net-up", tmp_path / "board", chip=firmware.chip)
    spec, power = source.start()
    board = Board(spec, profile=load_profile("ecowatt-idf"), power=power)
    try:
        flash_app(board.open(), firmware, "app-v1")
        yield source, board
    finally:
        board.close()
        source.stop()


def test_waits_for_the_boards_address(virtual: tuple[VirtualBoardSource, Board]) -> None:
    _, board = virtual  # just flashed: booting into the app
    assert wait_network_up(board, timeout=20) == board.spec.network_address


def test_another_address_than_declared_is_an_error(virtual: tuple[VirtualBoardSource, Board], firmware: Index) -> None:
    _, running = virtual
    running.close()  # the same board, declared with another address in the inventory
    board = Board(replace(running.spec, network_address="192.168.4.99"), profile=load_profile("ecowatt-idf"))
    with board:
        flash_app(board, firmware, "app-v1")  # nothing to write: it resets into the app
        with pytest.raises(
            BoardError,
            match=rf"board net-up .* came up with IP {running.spec.network_address}, but "
            r"its inventory says network_address = '192\.168\.4\.99'.*boards file",
        ):
            wait_network_up(board, timeout=20)
