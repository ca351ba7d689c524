"""The README's worked example of a profile for a new format (``examples/wire-profiles/acme-telemetry.toml``).

It must do what the README says: load, let ``hil server`` speak it standalone, and let the upload
scenarios, run over ``--hil-server-url``, pass against that server — twice, so the second run learns
the server's last nonce from the format's own replay reply.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.images.index import Index
from hil.protocol.readings import REGISTERS, Reading, Readings
from hil.server import DeviceKeys, ServerConfig, close_app, create_app
from hil.wire.outcome import Outcome
from hil.wire.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "examples/wire-profiles/acme-telemetry.toml"
RUN_TIMEOUT = 300
ADMIN_TOKEN = "selftest-admin"  # TEST ONLY


def test_the_example_loads_and_differs_from_the_format_it_reuses() -> None:
    acme, api = load_profile(EXAMPLE, rootdir=ROOT), load_profile("ecowatt-api")
    assert acme.codec_name == api.codec_name == "ecowatt-api"
    assert acme.upload_path("EW-0001") == "/v2/devices/EW-0001/telemetry"
    assert acme.path_device_id("/v2/devices/EW-0001/telemetry") == "EW-0001"
    assert acme.classify(409, b'{"ok":false,"reason":"replay: nonce 3 is not above 7","last_nonce":7}').outcome is (
        Outcome.REPLAY
    )
    assert api.classify(409, b'{"ok":false,"reason":"replay"}').outcome is Outcome.UNRECOGNISED
    assert acme.describe().startswith("wire profile acme-telemetry:")


def test_a_body_naming_another_device_than_the_path_is_refused(tmp_path: Path) -> None:
    """The id travels in the path and (in this codec's packet) the body: the server must refuse a mismatch."""
    acme = load_profile(EXAMPLE, rootdir=ROOT)
    keys = {d: DeviceKeys(d, bytes([n]) * 32, bytes([n + 1]) * 16) for n, d in ((1, "EW-0001"), (3, "EW-0002"))}
    app = create_app(ServerConfig(db_path=tmp_path / "db.sqlite", devices=keys, admin_token=ADMIN_TOKEN, wire=acme))
    readings = Readings("EW-0001", 1700000000, tuple(Reading(r, 1.0) for r in REGISTERS))
    body = acme.body(acme.build(readings, nonce=5, hmac_key=keys["EW-0001"].hmac_key))
    try:
        client = app.test_client()
        elsewhere = client.post(acme.upload_path("EW-0002"), data=body, content_type="application/json")
        assert acme.classify(elsewhere.status_code, elsewhere.get_data()).outcome is Outcome.INVALID
        own = client.post(acme.upload_path("EW-0001"), data=body, content_type="application/json")
        assert acme.classify(own.status_code, own.get_data()).outcome is Outcome.ACCEPTED
    finally:
        close_app(app)


@pytest.fixture
def acme_server(firmware: Index, tmp_path: Path) -> Iterator[str]:
    """``hil server --wire-profile EXAMPLE`` on a free port with the lab registry, as the README runs it."""
    env = {**os.environ, "HIL_ADMIN_TOKEN": ADMIN_TOKEN}  # the token from the environment, not `ps`
    cmd = [sys.executable, "-m", "hil.cli", "server", "--port", "0", f"--db={tmp_path / 'acme.sqlite'}",
           f"--devices={firmware.path('devices')}", f"--wire-profile={EXAMPLE}", "--rate-limit", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # blocks until the server prints its URL (or exits)
        assert url.startswith("http://"), f"`hil server --wire-profile={EXAMPLE}` printed {url!r}, exit {proc.poll()}"
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def run_scenarios(url: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ESPTOOL_"))}
    cmd = [sys.executable, "-m", "pytest", "tests/test_upload_server.py", "-q", "-rs", "-p", "no:cacheprovider",
           "-n", "0", "--hil-virtual", f"--hil-wire-profile={EXAMPLE}", f"--hil-server-url={url}", "--hil-no-flood",
           f"--hil-report-dir={out}", f"--hil-logs-dir={out / 'logs'}"]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def test_the_upload_scenarios_pass_against_hil_server_speaking_the_example(acme_server: str, tmp_path: Path) -> None:
    for attempt in ("first", "second"):  # the second run starts above the nonces the first one left
        result = run_scenarios(acme_server, tmp_path / attempt)
        assert result.returncode == 0, f"{attempt} run against {acme_server}:\n{result.stdout[-5000:]}"
        summary = result.stdout.strip().splitlines()[-1]
        passed = re.search(r"(\d+) passed", summary)
        assert passed and int(passed.group(1)) >= 15, summary
        skipped = re.findall(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", result.stdout)
        # only the burst scenarios under --hil-no-flood, what needs the built-in server (naming the server
        # under test), or a feature the example's format does not have
        assert all("--hil-no-flood" in reason or acme_server in reason or reason.startswith("wire profile ")
                   for reason in skipped), skipped
