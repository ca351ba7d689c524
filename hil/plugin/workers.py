"""How many pytest-xdist workers ``-n auto`` starts: as many as the run has boards to give them.

Each worker takes one board for the whole session. With boards on the bench (``--hil-port``,
``--hil-boards`` or detected on USB) that is one worker per board: more would only queue on the
board locks. With virtual boards every worker starts its own, and a virtual board's work is CPU
work, so that is one per core the process may use. One board or one core means no workers at all
(``0``: the tests run in this process, as with ``-n 0``), which keeps ``-n auto`` no slower than a
plain run where nothing can run side by side.
"""

from __future__ import annotations

import os

import pytest

from hil.settings import HilSettings


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
