"""The scenarios written against outcomes run green in every shipped wire profile: the virtual board
speaks the profile's format (provisioned through NVS ``ecowatt/wire``), the built-in server serves
it, and the profile builds, parses and judges the packets. The default profile is the main run
(``pytest tests``); this runs the others on the upload, server, network and OTA scenarios, and the
upload and network scenarios once more against a firmware without console commands, driven by its
timers (``--hil-device-trigger timer``), as the public fw134 firmware is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hil.adversarial.certificates import CASES as CERTIFICATE_CASES

ROOT = Path(__file__).resolve().parents[2]

RUN_TIMEOUT = 600
WIRE_SCENARIOS = ("tests/test_upload.py", "tests/test_upload_server.py", "tests/test_network.py", "tests/test_ota.py",
                  "tests/test_ota_versions.py")
# What may skip, and why: a committed capture is in one format only.
ALLOWED_SKIPS = ("the committed reference session is an ecowatt-api capture",
                 "needs a sniffer")


@pytest.mark.parametrize("profile", ["ecowatt-fw134"])
def test_wire_scenarios_pass_in_profile(profile: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ESPTOOL_"))}
    cmd = [sys.executable, "-m", "pytest", *WIRE_SCENARIOS, "-q", "-rs", "-p", "no:cacheprovider", "-n", "0",
           "--hil-virtual", f"--hil-wire-profile={profile}", f"--hil-report-dir={tmp_path}",
           f"--hil-logs-dir={tmp_path / 'logs'}"]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, f"scenarios under {profile}:\n{result.stdout[-6000:]}"
    assert int(re.search(r"(\d+) passed", summary).group(1)) >= 50, summary
    skipped = re.findall(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", result.stdout)
    assert all(reason.startswith(ALLOWED_SKIPS) for reason in skipped), skipped
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "wire profile" in report and profile in report, "the report does not name the wire profile"


def test_upload_scenarios_drive_a_console_less_firmware_by_its_timers(tmp_path: Path) -> None:
    """The harness sends no ``upload`` to a timer-driven board: every upload the scenarios wait for
    comes from the firmware's timer; scenarios that need a command at a chosen moment skip, saying so.
    Of the certificate cases (one timer period each) the control and one refusal are enough here: how
    the upload is triggered does not depend on what is wrong with the certificate."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ESPTOOL_"))}
    same_path = [f"--deselect=tests/test_upload.py::test_certificate_wrong_in_one_way_refused[{case.name}]"
                 for case in CERTIFICATE_CASES if case.name not in ("control", "wrong-host")]
    cmd = [sys.executable, "-m", "pytest", "tests/test_upload.py", "tests/test_network.py", "-q", "-rs",
           "-p", "no:cacheprovider", "-n", "0", "--hil-virtual", "--hil-wire-profile=ecowatt-fw134",
           "--hil-device-trigger=timer", f"--hil-report-dir={tmp_path}", f"--hil-logs-dir={tmp_path / 'logs'}",
           *same_path]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, f"timer-driven scenarios:\n{result.stdout[-6000:]}"
    assert int(re.search(r"(\d+) passed", summary).group(1)) >= 12, summary
    skipped = re.findall(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", result.stdout)
    assert all(reason.startswith(ALLOWED_SKIPS) or "acts on its timers only" in reason for reason in skipped), skipped
    logs = [p.read_text(encoding="utf-8", errors="replace") for p in (tmp_path / "logs").rglob("*.log")]
    assert any("Periodic upload every 4 s" in log for log in logs), "no board ran its upload timer"
    sent = [line for log in logs for line in log.splitlines() if re.search(r">>> (upload|ota check)\b", line)]
    assert not sent, f"the harness typed commands to a console-less firmware: {sent[:3]}"
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "driven by timers (upload every 4 s" in report, "the report does not say how the board was driven"
