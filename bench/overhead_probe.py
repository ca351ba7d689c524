"""Probe scenarios for bench/boot_suite.py: what the fixtures alone cost per test (not collected by
the suite: testpaths = tests; run only by the bench)."""


def test_warm_up(flashed_board):
    """Starts the virtual board and flashes it once; not reported."""


def test_board_only(board):
    """Lock held, log switched, board reset: the fixed cost of every scenario."""


def test_flashed_board_already_flashed(flashed_board):
    """Plus a skip-if-identical flash of bootloader + NVS + app-v1 and a reset."""
