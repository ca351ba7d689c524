"""Line coverage of a virtual board's own process, labelled with the test that was running.

Mutation testing (``bench/mutation_select.py``) runs, per mutant, only the scenarios that execute the
mutated lines. The reference server runs inside pytest, where pytest-cov labels each line with its
test; the virtual board runs in a ``hil sim`` process of its own, out of pytest-cov's reach. So, when
``HIL_SIM_COVERAGE`` names a coverage data file, ``python -m hil.sim`` measures itself (from before it
imports the firmware, so lines run only at import are seen too) and the control socket's
``coverage_context`` request labels what follows with a test id; the data is saved, one file per
process (``<data file>.<host>.<pid>.<random>``), when the board stops. Without the variable nothing
is imported or measured.

Lines another thread runs just around a switch may be labelled with the neighbouring test: a
mutation run then selects one test too many or too few for such a line, never a wrong module.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coverage import Coverage

ENV = "HIL_SIM_COVERAGE"


def start_measuring() -> Coverage | None:
    """Start measuring this process if ``HIL_SIM_COVERAGE`` is set; the measurement, else None."""
    data_file = os.environ.get(ENV)
    if not data_file:
        return None
    import coverage

    here = os.path.dirname(os.path.abspath(__file__))
    cov = coverage.Coverage(data_file=data_file, data_suffix=True, config_file=False, source=[here])
    cov.start()
    return cov


def stop_measuring(cov: Coverage | None) -> None:
    """Stop and save (the board is stopping)."""
    if cov is not None:
        cov.stop()
        cov.save()


def switch_context(test: str) -> dict[str, str]:
    """Label the lines run from now on with ``test`` (a control request); raises ``ValueError`` when
    the board is not being measured."""
    if not os.environ.get(ENV):
        raise ValueError(f"this virtual board is not measured: start it with {ENV} naming a coverage data file")
    import coverage

    cov = coverage.Coverage.current()
    if cov is None:
        raise ValueError(f"{ENV} is set but this virtual board's measurement did not start")
    cov.switch_context(test)
    return {"context": test}
