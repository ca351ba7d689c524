"""``--hil-server-url``: the scenarios against a server the harness did not start (here `hil server`
run standalone, as a lab would), in either wire profile (`hil server --wire-profile`). Scenarios that
need the built-in server's internals or another configuration skip with the reason; the rest pass —
twice in a row, since the server keeps its nonces. Burst scenarios run against the external server
too: they pass against one with a rate limit, and against one without they fail with a finding that
says what the server did.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hil.images.index import Index

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 300
PROFILES = ["ecowatt-api", "ecowatt-fw134"]
StartServer = Callable[..., str]


@pytest.fixture
def standalone_server(firmware: Index, tmp_path: Path) -> Iterator[StartServer]:
    """Starts `hil server` on a free port with the lab registry (a team's test server); stops them all."""
    procs: list[subprocess.Popen[str]] = []

    def start(profile: str, *, rate_limit: int) -> str:
        env = {**os.environ, "HIL_ADMIN_TOKEN": "selftest-admin"}
        devices = ["--devices", str(firmware.path("devices"))] if profile == "ecowatt-api" else []
        proc = subprocess.Popen([sys.executable, "-m", "hil.cli", "server", "--port", "0",
                                 "--db", str(tmp_path / f"{profile}-{rate_limit}.db"), *devices,
                                 "--rate-limit", str(rate_limit), "--wire-profile", profile],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
        procs.append(proc)
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://"), f"`hil server --wire-profile {profile}` printed {url!r} instead of its URL"
        return url

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def run_scenarios(url: str, out: Path, profile: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ESPTOOL_"))}
    cmd = [sys.executable, "-m", "pytest", "tests/test_upload.py", "tests/test_upload_server.py", "-q", "-rs",
           "-p", "no:cacheprovider", "-n", "0", "--hil-virtual", "--hil-server-url", url,
           f"--hil-wire-profile={profile}", f"--hil-report-dir={out}", f"--hil-logs-dir={out / 'logs'}", *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def summary_of(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("profile", PROFILES)
def test_scenarios_run_against_an_external_server(standalone_server: StartServer, profile: str,
                                                  tmp_path: Path) -> None:
    url = standalone_server(profile, rate_limit=0)
    for attempt in ("first", "second"):
        result = run_scenarios(url, tmp_path / attempt, profile, "--hil-no-flood")
        assert result.returncode == 0, f"{attempt} run against {url} ({profile}):\n{result.stdout[-5000:]}"
        passed = int(re.search(r"(\d+) passed", summary_of(result)).group(1))
        skipped = re.findall(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", result.stdout)
        assert passed >= 20, summary_of(result)
        # every skip says why: the built-in server's internals, the burst scenarios under --hil-no-flood, the
        # slow tier, or a feature the wire profile does not have
        assert skipped and all("--hil-server-url" in reason or url in reason or "--hil-no-flood" in reason
                               or "--hil-slow" in reason or f"wire profile {profile}" in reason
                               for reason in skipped), skipped
        assert not any("external" in reason and "--hil-server-url" not in reason for reason in skipped), skipped


@pytest.mark.parametrize("profile", PROFILES)
def test_burst_scenarios_run_against_an_external_server(standalone_server: StartServer, profile: str,
                                                        tmp_path: Path) -> None:
    """With a rate limit the external server passes the burst scenarios; without one the rate-limit
    scenario fails with a finding naming what the server did (not a skip, not a parse error)."""
    limited = standalone_server(profile, rate_limit=10)
    result = run_scenarios(limited, tmp_path / "limited", profile, "-k", "rate_limit or parallel")
    assert result.returncode == 0, f"burst scenarios against {limited} ({profile}):\n{result.stdout[-5000:]}"
    assert "2 passed" in summary_of(result), summary_of(result)

    unlimited = standalone_server(profile, rate_limit=0)
    result = run_scenarios(unlimited, tmp_path / "unlimited", profile, "-k", "rate_limit")
    assert result.returncode == 1 and "1 failed" in summary_of(result), result.stdout[-3000:]
    assert "were never refused as rate-limited" in result.stdout and "accepted" in result.stdout, result.stdout[-3000:]
