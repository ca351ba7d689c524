"""Defect meta-tests: every scenario that claims a defect (``@pytest.mark.fails_with``) is run
against a virtual board carrying that defect and must fail there.

Each run is ``pytest tests --hil-sim-defect NAME --hil-defect-proof`` in a subprocess, with its own
report directory: that run passes only when every claiming scenario failed with an assertion.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hil.sim.defects import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
USAGE_ERROR = 4  # pytest's exit code for a usage error: here, no scenario claims the defect
PROOF_TIMEOUT = 300


def run_proof(defect: str, out: Path) -> subprocess.CompletedProcess[str]:
    """Run the scenarios that claim ``defect`` against a board that has it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ESPTOOL_"))}
    cmd = [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
           "-W", "ignore::DeprecationWarning", "--hil-virtual", "--hil-sim-defect", defect,
           "--hil-defect-proof", "--hil-report-dir", str(out), "--hil-logs-dir", str(out / "logs")]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=PROOF_TIMEOUT)


@pytest.mark.parametrize("defect", [d.name for d in CATALOGUE])
def test_scenarios_detect_defect(defect: str, tmp_path: Path) -> None:
    result = run_proof(defect, tmp_path)
    output = result.stdout[-4000:] + result.stderr[-2000:]
    if result.returncode == USAGE_ERROR and "nothing would prove" in output:
        pytest.skip(f"no scenario claims defect {defect} yet")
    assert result.returncode == 0, f"scenarios did not all detect {defect}:\n{output}"
    summary = result.stdout.strip().splitlines()[-1]
    assert "xfailed" in summary and "passed" not in summary, summary
