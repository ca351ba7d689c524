"""The capture fixtures end to end: upload scenarios on a virtual board with the capture forced
through the recording relay (``--hil-capture-mode relay``, the not-root path) still see the board's
traffic, write one valid pcap per test under captures/runs/<run>/, and say so once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from hil.net.flows import flows_from_pcap

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 240
SCENARIOS = "accepted_and_stored or tampered_packets"
PCAP = "tests_test_upload.py_test_upload_accepted_and_stored_intact.pcap"


def test_upload_scenarios_pass_through_the_relay_capture(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ESPTOOL_"))}
    cmd = [sys.executable, "-m", "pytest", "tests/test_upload.py", "-k", SCENARIOS, "-q", "-p", "no:cacheprovider",
           "-n", "0", "-p", "no:benchmark", "--hil-virtual", "--hil-capture-mode", "relay",
           "--hil-report-dir", str(tmp_path), "--hil-logs-dir", str(tmp_path / "logs"), "-o", "log_level=WARNING",
           "-rA"]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    output = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    assert re.search(r"\b2 passed\b", result.stdout), output
    report = (tmp_path / "report.html").read_text(encoding="utf-8", errors="replace")
    assert "recording relay (sniffing unavailable: relay forced by configuration)" in report  # said, in the header
    assert "capture (relay)" in report
    # the pcap this run linked from its report (other sessions may be writing captures/runs/ right now)
    links = set(re.findall(r"captures/runs/[^/&\"'\s]+/" + re.escape(PCAP), report))
    assert len(links) == 1, f"report links {links or 'no'} capture of the accepted-upload test"
    uploads = [r for f in flows_from_pcap(ROOT / links.pop()) for r in f.http_requests()
               if r.target == "/api/upload/data"]
    assert len(uploads) == 1 and b'"nonce":10001' in uploads[0].body
