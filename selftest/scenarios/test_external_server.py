"""``--hil-server-url``: the scenarios against a server the harness did not start (here `hil server`
run standalone, as a lab would). Scenarios that need the built-in server's internals or another
configuration skip with the reason; the rest pass — twice in a row, since the server keeps its nonces.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from hil.images.index import Index

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 300


@pytest.fixture
def standalone_server(firmware: Index, tmp_path: Path) -> Iterator[str]:
    """`hil server` on a free port with the lab registry, rate limiting off (a team's test server)."""
    env = {**os.environ, "HIL_ADMIN_TOKEN": "selftest-admin"}
    proc = subprocess.Popen([sys.executable, "-m", "hil.cli", "server", "--port", "0", "--db", str(tmp_path / "db"),
                             "--devices", str(firmware.path("devices")), "--rate-limit", "0",
                             "--admin-token", "selftest-admin"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://"), f"`hil server` printed {url!r} instead of its URL"
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def run_scenarios(url: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ESPTOOL_"))}
    cmd = [sys.executable, "-m", "pytest", "tests/test_upload.py", "tests/test_upload_server.py", "-q", "-rs",
           "-p", "no:cacheprovider", "-n", "0", "--hil-virtual", "--hil-server-url", url,
           f"--hil-report-dir={out}", f"--hil-logs-dir={out / 'logs'}"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def test_scenarios_run_against_an_external_server(standalone_server: str, tmp_path: Path) -> None:
    for attempt in ("first", "second"):
        result = run_scenarios(standalone_server, tmp_path / attempt)
        summary = result.stdout.strip().splitlines()[-1]
        assert result.returncode == 0, f"{attempt} run against {standalone_server}:\n{result.stdout[-5000:]}"
        passed = int(re.search(r"(\d+) passed", summary).group(1))
        skipped = re.findall(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", result.stdout)
        assert passed >= 10, summary
        assert skipped and all("--hil-server-url" in reason or standalone_server in reason for reason in skipped), \
            skipped
