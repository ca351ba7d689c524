"""Self-test ordering: the long sub-runs first.

The scenario meta-tests (``selftest/scenarios``) each run the scenario suite in a subprocess, 5 s to
3 min apiece; everything else takes well under a second. With pytest-xdist's ``worksteal``
scheduling (the README's command, ``--dist worksteal``) a worker that runs out steals from the end of another's queue, so a long test
near the end of the collection is a tail nobody can share. Started first, the long runs overlap with
the short tests instead. Order within each group is kept.
"""

from __future__ import annotations

import pytest

# Longest first: the console-less timer run and the other wire profile (1-3 min each), then the
# defect proofs and external-server runs (5-25 s each).
LONG_FIRST = ("selftest/scenarios/test_wire_profiles.py", "selftest/scenarios/")


def _rank(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return next((i for i, prefix in enumerate(LONG_FIRST) if path.startswith(prefix)), len(LONG_FIRST))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the scenario sub-runs to the front of the collection (a stable sort)."""
    items.sort(key=_rank)
