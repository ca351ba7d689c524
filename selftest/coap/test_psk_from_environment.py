"""A PSK given in the environment is what ``provision`` writes into the board's NVS and what the
CoAPS client uses (as on a real bench), and it reaches neither the report, the JUnit XML nor the logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEY = "bench-key-7f3a91"  # TEST ONLY


def test_environment_psk_is_provisioned_used_and_never_written(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HIL_"))}
    env.update(HIL_COAP_PSK_ID="bench-id", HIL_COAP_PSK=KEY)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_coaps.py", "-q", "-n", "0", "-p", "no:cacheprovider",
         "--hil-virtual", "-k", "correct_psk or wrong_psk", f"--hil-report-dir={tmp_path}",
         f"--hil-logs-dir={tmp_path / 'logs'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
    assert "4 passed" in result.stdout.strip().splitlines()[-1]
    logs = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".log") for p in logs), "no console log was written: the check would be blind"
    # the device logged the identity it accepted from the environment, never the key
    assert any("identity 'bench-id'" in p.read_text(errors="replace") for p in logs if p.suffix == ".log")
    leaking = [str(p) for p in logs if KEY.encode() in p.read_bytes()]
    assert not leaking, leaking
