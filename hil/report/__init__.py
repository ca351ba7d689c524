"""hil.report — pytest-html evidence for a Design Decision Record.

A STRIDE coverage matrix from ``@pytest.mark.stride``, measurements judged against printable limits,
the environment (boards, firmware, key fingerprints, tool versions; never key material), log tails of
failed tests, embedded PNGs; a self-contained HTML report and JUnit XML on every run, plus
``stride.json``, ``measurements.json`` and ``environment.json``. The pytest side is
``hil.report.pytest_plugin`` (fixtures ``evidence`` and ``hil_environment``).
"""

from hil.report.environment import Environment, SecretRefusedError, fingerprint_of
from hil.report.evidence import Evidence
from hil.report.limits import AtLeast, AtMost, Between, Equals, Limit
from hil.report.measurements import Measurement

__all__ = [
    "AtLeast",
    "AtMost",
    "Between",
    "Environment",
    "Equals",
    "Evidence",
    "Limit",
    "Measurement",
    "SecretRefusedError",
    "fingerprint_of",
]
