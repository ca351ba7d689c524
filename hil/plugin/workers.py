"""Workers and boards: ``-n auto`` starts as many pytest-xdist workers as the run has boards to
give them, a larger ``-n`` is refused, and each worker takes its own board.

Each worker takes one board for the whole session: a board's state (flash, NVS, console) is the
session's, so handing it from worker to worker per test would reopen and reflash it at every
hand-over and make one worker's verdicts depend on another's flashing. With boards on the bench
(``--hil-port``, ``--hil-boards`` or detected on USB) that is one worker per board, worker ``gwN``
taking board ``N``: more workers than boards is a usage error at start (a worker without a board
would only wait out the lock timeout and error all its tests). With virtual boards every worker
starts its own, and a virtual board's work is CPU work, so ``-n auto`` is one per core the process
may use. One board or one core means no workers at all (``0``: the tests run in this process, as
with ``-n 0``), which keeps ``-n auto`` no slower than a plain run where nothing can run side by side.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

from hil.settings import HilSettings

if TYPE_CHECKING:
    from hil.board.spec import BoardSpec


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_workers(config: pytest.Config) -> int:
    """Workers for ``-n auto``: one per bench board, else one per usable core (virtual boards)."""
    from hil.board.inventory import inventory  # USB detection: only when -n auto asks

    s = HilSettings.from_config(config)  # before pytest_configure: not in the stash yet
    boards = 0 if s.virtual else len(inventory(s.ports, s.boards_file))
    workers = boards or usable_cores()
    return workers if workers > 1 else 0


def requested_workers(config: pytest.Config) -> int:
    """Workers xdist will start (0 without xdist or with ``-n 0``); after ``-n auto`` is resolved."""
    if getattr(config.option, "dist", "no") == "no":
        return 0
    count = 0
    for spec in getattr(config.option, "tx", None) or ():  # "popen" per worker, or "3*popen"
        times, star, _ = str(spec).partition("*")
        count += int(times) if star and times.isdigit() else 1
    return count


def check_worker_count(config: pytest.Config, s: HilSettings) -> None:
    """At the controller: refuse more workers than real boards, naming both and what to give instead.
    Virtual boards (``--hil-virtual``, or none configured or detected) are one per worker: no limit."""
    workers = requested_workers(config)
    if workers <= 1 or s.virtual:
        return
    from hil.board.inventory import InventoryError, inventory

    try:
        boards = inventory(s.ports, s.boards_file)
    except InventoryError as exc:
        raise pytest.UsageError(str(exc)) from exc
    if boards and workers > len(boards):
        raise pytest.UsageError(too_many_workers(workers, boards))
    _check_distinct_devices(boards[:workers])


def _check_distinct_devices(boards: Sequence[BoardSpec]) -> None:
    """Two inventory names for one device would give two workers one board: the second would wait."""
    from hil.board.port_identity import resolve_port

    seen: dict[str, BoardSpec] = {}
    for board in boards:
        device = resolve_port(board.port)
        first = seen.setdefault(device, board)
        if first is not board:
            raise pytest.UsageError(
                f"boards {first.name} ({first.port}) and {board.name} ({board.port}) are one device, {device}: "
                "two workers cannot both take it. Name each board once (--hil-port / --hil-boards)"
            )


def too_many_workers(workers: int, boards: Sequence[BoardSpec]) -> str:
    """Why a run with more workers than boards is refused, and what to run instead."""
    found = ", ".join(f"{b.name} ({b.port})" for b in boards)
    return (
        f"-n {workers} asks for {workers} workers, but the run has {len(boards)} real board(s): {found}. "
        "Each worker takes one board for the whole session, so a worker without one could only wait "
        f"for a board and error its tests. Use -n auto (one worker per board) or -n {len(boards)}, "
        "or add boards (--hil-port / --hil-boards)"
    )


class NoBoardForWorker(LookupError):
    """A worker numbered beyond the boards it sees."""


def board_for_worker(boards: Sequence[BoardSpec], worker: str, index: int) -> BoardSpec:
    """The board worker ``index`` takes: its own, ``boards[index]``. Raises :class:`NoBoardForWorker`
    for a worker beyond the boards (the controller refuses such a run; a board gone since, or a worker
    that xdist restarted under a new number, lands here)."""
    if index < len(boards):
        return boards[index]
    raise NoBoardForWorker(
        f"worker {worker} has no board: this worker sees {len(boards)} board(s) "
        f"({', '.join(b.name for b in boards)}) and takes number {index}. "
        f"Run with -n auto or -n {len(boards)} (or fewer), and check that every board is still attached"
    )
