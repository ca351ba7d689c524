"""Defect meta-tests: every scenario that claims a defect (``@pytest.mark.fails_with``) is run
against a virtual board or reference server carrying that defect and must fail there.

Each run is ``pytest tests --hil-sim-defect NAME --hil-defect-proof`` (``--hil-server-defect`` for a
server defect) in a subprocess, with its own report directory: that run passes only when every
claiming scenario failed with an assertion. The defects claimed by the scenarios that speak any wire
format (upload, server, network, OTA) are proven a second time under the ``ecowatt-fw134`` wire
profile: a scenario that states outcomes must catch the same defect whatever the format.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hil.server.defects import CATALOGUE as SERVER_CATALOGUE
from hil.sim.defects import CATALOGUE as SIM_CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
USAGE_ERROR = 4  # pytest's exit code for a usage error: here, no scenario claims the defect
PROOF_TIMEOUT = 300


DEFECTS = [pytest.param("--hil-sim-defect", d.name, id=f"board-{d.name}") for d in SIM_CATALOGUE] + \
    [pytest.param("--hil-server-defect", d.name, id=f"server-{d.name}") for d in SERVER_CATALOGUE]
# The scenarios written against outcomes (any wire format), and the defects they claim.
WIRE_SCENARIOS = ("tests/test_upload.py", "tests/test_upload_server.py", "tests/test_network.py", "tests/test_ota.py",
                  "tests/test_ota_versions.py")


def claimed_in(paths: tuple[str, ...]) -> set[str]:
    """Every defect name a ``fails_with(...)`` marker in these scenario files claims."""
    names: set[str] = set()
    for path in paths:
        for call in re.findall(r"fails_with\(([^)]*)\)", (ROOT / path).read_text(encoding="utf-8")):
            names.update(re.findall(r'"([a-z0-9-]+)"', call))
    return names


_CLAIMED = claimed_in(WIRE_SCENARIOS)
FW134_DEFECTS = [pytest.param("--hil-sim-defect", d.name, id=f"fw134-board-{d.name}")
                 for d in SIM_CATALOGUE if d.name in _CLAIMED] + \
    [pytest.param("--hil-server-defect", d.name, id=f"fw134-server-{d.name}")
     for d in SERVER_CATALOGUE if d.name in _CLAIMED]


def test_the_fw134_proofs_cover_every_upload_defect() -> None:
    """The static scan finds the claims: every upload-area defect is proven in fw134 too."""
    upload = {d.name for d in (*SIM_CATALOGUE, *SERVER_CATALOGUE) if d.area == "upload"}
    assert upload <= _CLAIMED, sorted(upload - _CLAIMED)


def run_proof(option: str, defect: str, out: Path, *extra: str,
              scenarios: tuple[str, ...] = ("tests",)) -> subprocess.CompletedProcess[str]:
    """Run the scenarios that claim ``defect`` against a board or server that has it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ESPTOOL_"))}
    cmd = [sys.executable, "-m", "pytest", *scenarios, "-q", "-p", "no:cacheprovider", "-n", "0",
           "-W", "ignore::DeprecationWarning", "--hil-virtual", option, defect, *extra,
           "--hil-defect-proof", f"--hil-report-dir={out}", f"--hil-logs-dir={out / 'logs'}"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=PROOF_TIMEOUT)


@pytest.mark.parametrize("option, defect", DEFECTS)
def test_scenarios_detect_defect(option: str, defect: str, tmp_path: Path) -> None:
    check_proof(run_proof(option, defect, tmp_path), defect)


@pytest.mark.parametrize("option, defect", FW134_DEFECTS)
def test_scenarios_detect_defect_in_fw134_format(option: str, defect: str, tmp_path: Path) -> None:
    result = run_proof(option, defect, tmp_path, "--hil-wire-profile=ecowatt-fw134", scenarios=WIRE_SCENARIOS)
    check_proof(result, defect)


def check_proof(result: subprocess.CompletedProcess[str], defect: str) -> None:
    """The proof run passed: every claiming scenario failed with an assertion, none passed."""
    output = result.stdout[-4000:] + result.stderr[-2000:]
    # a catalogued defect no scenario claims is a gap in the suite, not something to skip past
    assert not (result.returncode == USAGE_ERROR and "nothing would prove" in output), \
        f"no scenario in tests/ is marked fails_with({defect!r}): claim it where a scenario detects it, " \
        "or remove it from the catalogue"
    assert result.returncode == 0, f"scenarios did not all detect {defect}:\n{output}"
    summary = result.stdout.strip().splitlines()[-1]
    assert "xfailed" in summary and "passed" not in summary, summary
