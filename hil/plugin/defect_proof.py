"""Defect proof runs: show that the scenarios catch the defects they claim to catch.

``pytest --hil-sim-defect NAME --hil-defect-proof`` (or ``--hil-server-defect NAME``) keeps only the scenarios marked
``@pytest.mark.fails_with(NAME)`` and turns each into a strict expected failure: the run passes
only if every one of them fails with an assertion (a missed event or a failed check) against the
defective board. Errors of the harness itself (flashing, a board that does not start) are not
assertions and still fail the run, so they can never pass for a detected defect.
"""

from __future__ import annotations

import pytest

from hil.options import OptionSpec, read_option

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "defect-proof",
        "with one --hil-sim-defect or --hil-server-defect: run only the scenarios marked "
        "fails_with(that defect) and require each to fail",
        default=False,
        action="store_true",
    ),
)


def declared_defects(item: pytest.Item) -> set[str]:
    """Defects the item's ``fails_with`` markers name (function, class, module and parameter)."""
    return {name for mark in item.iter_markers("fails_with") for name in mark.args}


def check_declared(items: list[pytest.Item], known: set[str]) -> None:
    """Refuse a ``fails_with`` naming a defect no catalogue has (a typo would prove nothing)."""
    for item in items:
        unknown = sorted(declared_defects(item) - known)
        if unknown:
            raise pytest.UsageError(
                f"{item.nodeid}: fails_with names unknown defects {unknown}; see "
                "`hil sim --list-defects` and `hil server --list-defects`"
            )


def select_for_proof(config: pytest.Config, items: list[pytest.Item], defects: tuple[str, ...]) -> None:
    """Deselect what does not claim ``defects[0]``; make the rest strict expected failures."""
    if not read_option(config, OPTIONS[0]):
        return
    if len(defects) != 1:
        raise pytest.UsageError(
            "--hil-defect-proof needs exactly one defect: one --hil-sim-defect NAME or one --hil-server-defect NAME"
        )
    (defect,) = defects
    keep = [item for item in items if defect in declared_defects(item)]
    dropped = [item for item in items if defect not in declared_defects(item)]
    if not keep:
        raise pytest.UsageError(
            f"no collected scenario is marked fails_with({defect!r}): nothing would prove the defect is detected"
        )
    for item in keep:
        item.add_marker(
            pytest.mark.xfail(
                strict=True,
                raises=AssertionError,
                reason=f"must detect defect {defect} (a pass here means the scenario missed it)",
            )
        )
    config.hook.pytest_deselected(items=dropped)
    items[:] = keep
